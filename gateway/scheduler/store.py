"""Schedules in Redis: definitions and state as JSON in two hashes, plus a version counter.

Not APScheduler's RedisJobStore: that one pickles whole jobs (callables included), which
the gateway and other languages cannot read, and it keeps one next-run time per job, not
the per-fire bookkeeping that dedupes across a failover. See docs/scheduling.md.
"""

from __future__ import annotations

from typing import cast

from gateway.scheduler.model import RECENT, Schedule, State, decode_schedule, decode_state, encode
from sdk.clients import AsyncClient
from sdk.errors import Conflict, ScheduleNotFound
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts
from sdk.protocol.keys import Keys


class Store:
    """Reads and writes of schedules; every definition change bumps the version."""

    def __init__(self, client: AsyncClient, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._scripts = AsyncScripts(client)

    async def version(self) -> int:
        return int(cast(bytes | None, await self.redis.get(self.keys.schedules_version)) or 0)

    async def all(self) -> dict[str, Schedule]:
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.schedules))
        return {k.decode(): decode_schedule(v) for k, v in raw.items()}

    async def states(self) -> dict[str, State]:
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.schedule_state))
        return {k.decode(): decode_state(v) for k, v in raw.items()}

    async def get(self, schedule_id: str) -> tuple[Schedule, State]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.schedules, schedule_id)
        pipe.hget(self.keys.schedule_state, schedule_id)
        raw, state = await pipe.execute()
        if raw is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}", details={"id": schedule_id})
        return decode_schedule(raw), decode_state(state)

    async def create(self, s: Schedule) -> None:
        """Add a new schedule; 409 if the id is taken."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(self.keys.schedules, s.id, encode(s))
        pipe.hdel(self.keys.schedule_state, s.id)
        pipe.incr(self.keys.schedules_version)
        created, _, _ = await pipe.execute()
        if not created:
            await self.redis.decr(self.keys.schedules_version)  # nothing changed after all
            raise Conflict(f"a schedule {s.id!r} already exists", details={"id": s.id})

    async def put(self, s: Schedule) -> None:
        """Replace an existing schedule's definition (its state stays)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.schedules, s.id, encode(s))
        pipe.incr(self.keys.schedules_version)
        await pipe.execute()

    async def delete(self, schedule_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.schedules, schedule_id)
        pipe.hdel(self.keys.schedule_state, schedule_id)
        pipe.incr(self.keys.schedules_version)
        removed, _, _ = await pipe.execute()
        if not removed:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}", details={"id": schedule_id})

    async def upsert_static(self, s: Schedule) -> bool:
        """Write a static schedule unless runtime edits own it (docs/scheduling.md)."""
        return await self._scripts(plans.schedule_upsert(self.keys, s.id, encode(s), s.app or ""))

    async def fired(self, schedule_id: str, run: str, queued_at: int, fire: int | None) -> bool:
        """Record a run of the schedule (``fire`` is None for a manual run)."""
        call = plans.schedule_fired(self.keys, schedule_id, run, queued_at, fire, RECENT)
        return await self._scripts(call)
