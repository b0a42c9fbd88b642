"""Turning one fire of a schedule into one run in Redis."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from gateway.catalog import Catalog
from gateway.scheduler.model import Schedule, State, jitter_ms, run_id
from gateway.scheduler.store import Store
from sdk import states
from sdk.broker import AsyncBroker
from sdk.calls import Call, SendOptions, build_submission
from sdk.protocol import JSON, new_id, now_ms, rfc3339
from sdk.protocol.plans import Submission
from sdk.serializers import Codec

log = logging.getLogger(__name__)
CONCURRENT_FIRES = 16


class Launcher:
    """Submits runs of schedules through the broker and records them in the store."""

    def __init__(
        self, broker: AsyncBroker, store: Store, catalog: Catalog, default_queue: str = "default"
    ) -> None:
        self.broker = broker
        self.store = store
        self.catalog = catalog
        self.codec = Codec(None)  # schedules carry JSON arguments only
        self.default_queue = default_queue
        # Fires due together wait their turn instead of each taking a Redis connection.
        self._slots = asyncio.Semaphore(CONCURRENT_FIRES)

    async def _queue_of(self, s: Schedule) -> str:
        if s.queue:
            return s.queue
        entry = (await self.catalog.entries()).get(s.task)  # cached: no lookup per fire
        return entry.queue if entry is not None else self.default_queue

    async def submission(self, s: Schedule, run: str, base_ms: int, delay_ms: int) -> Submission:
        options = SendOptions(
            queue=s.queue,
            priority=s.priority,
            eta=(base_ms + delay_ms) / 1000 if delay_ms else None,
            expires=rfc3339(base_ms + int(s.expires * 1000)) if s.expires is not None else None,
        )
        call = Call(s.task, list(s.args), dict(s.kwargs), options)
        return build_submission(
            call, self.codec, default_queue=await self._queue_of(s), content_type=JSON, run_id=run
        )

    async def fire(self, s: Schedule, fire_ms: int) -> bool:
        """Queue the run of ``s`` due at ``fire_ms``; False if that fire already has one
        (another leader queued it) or ``max_instances`` runs are still unfinished."""
        async with self._slots:
            return await self._fire(s, fire_ms)

    async def _fire(self, s: Schedule, fire_ms: int) -> bool:
        if s.max_instances is not None and await self._busy(s) >= s.max_instances:
            log.warning("schedule %s: skipping %s, max_instances runs unfinished", s.id, fire_ms)
            return False
        run = run_id(s.id, fire_ms)
        sub = await self.submission(s, run, fire_ms, jitter_ms(s, fire_ms))
        created = (await self.broker.submit([sub]))[0]
        await self.store.fired(s.id, run, sub.message.created_at, fire_ms)
        if not created:
            log.info("schedule %s: fire %s already queued as %s", s.id, fire_ms, run)
        return created

    async def run_now(self, s: Schedule) -> Submission:
        """A manual run (``POST /schedules/{id}/run``): a fresh id, not a fire time."""
        sub = await self.submission(s, new_id(), now_ms(), 0)
        await self.broker.submit([sub])
        await self.store.fired(s.id, sub.message.id, sub.message.created_at, None)
        return sub

    async def _busy(self, s: Schedule) -> int:
        """How many of the schedule's recent runs have not reached a terminal state."""
        _, state = await self.store.get(s.id)
        return await unfinished(self.broker, state)


async def unfinished(broker: AsyncBroker, state: State) -> int:
    pipe = broker.redis.pipeline(transaction=False)
    for run in state.recent:
        pipe.hget(broker.keys.run(run), "state")
    found = cast(list[bytes | None], await pipe.execute())
    return sum(1 for x in found if x is not None and x.decode() not in states.TERMINAL)
