"""Webhook deliveries in Redis: queued from the events streams, claimed, recorded.

- Every gateway reads every partition's events stream through the consumer group
  ``webhooks`` (one XREADGROUP over them all; on a Redis Cluster, where one command
  stays in one slot, one reader per partition); for each terminal run event whose run has
  a ``callback_url`` it queues a delivery (a hash holding the URL and the frozen
  payload, and the run id in its partition's fresh zset) with ``webhook_enqueue.lua``,
  then acknowledges the event. A gateway that dies between reading and acknowledging
  leaves the event pending; a live one claims it after ``RECLAIM_IDLE_MS``. Queuing
  twice is harmless: the script acts once per run.
- ``webhook_claim.lua`` hands each due delivery to one gateway by moving its due time a
  lease ahead (a first attempt moves from the fresh zset to the due zset as it is
  claimed, and first attempts get at least half of every claim); a claim asks every
  partition for its share. ``webhook_record.lua`` stores the attempt only if no other
  gateway stored that attempt number first, then reschedules, or ends, the delivery. A
  gateway that stops hands the claims of its unfinished attempts back with
  ``webhook_release.lua``; one that dies leaves them to lapse with the lease.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import redis.exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from gateway.waiters import Event
from sdk import protocol as p
from sdk import states
from sdk.clients import AsyncClient
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts
from sdk.protocol.keys import WEBHOOKS_GROUP, Keys
from sdk.runs import run_json, webhook_view
from sdk.serializers import Codec

_TERMINAL = {s.encode() for s in states.TERMINAL}
RECLAIM_IDLE_MS = 10_000  # an event read this long ago and not acknowledged is taken over
_json = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Delivery:
    run_id: str
    url: str
    payload: bytes
    attempts: int  # attempts recorded so far
    first_at: int  # ms
    log: list[Any]

    @property
    def msg_id(self) -> str:
        """``webhook-id``: one per run, the same on every retry."""
        return f"msg_{self.run_id}"


def _delivery(run_id: str, raw: dict[bytes, bytes]) -> Delivery | None:
    try:
        return Delivery(
            run_id,
            raw[b"url"].decode(),
            raw[b"payload"],
            int(raw[b"attempts"]),
            int(raw[b"first_at"]),
            list(_json.decode(raw[b"log"])),
        )
    except (KeyError, ValueError, msgspec.DecodeError):
        return None


def shares(limit: int, parts: Sequence[int], turn: int) -> dict[int, int]:
    """``limit`` split evenly over ``parts``; ``turn`` rotates which get the remainder."""
    base, extra = divmod(limit, len(parts))
    order = [parts[(turn + i) % len(parts)] for i in range(len(parts))]
    found = {part: base + (1 if i < extra else 0) for i, part in enumerate(order)}
    return {part: n for part, n in found.items() if n}


class Deliveries:
    def __init__(self, client: AsyncClient, keys: Keys, codec: Codec, ttl_s: int) -> None:
        self._redis = client
        self._keys = keys
        self._codec = codec
        self._ttl_s = ttl_s
        self._scripts = AsyncScripts(client)
        self._events = [keys.events(part) for part in keys.all_partitions]
        self._parts = {name.encode(): part for part, name in enumerate(self._events)}
        # The streams each reader's XREADGROUP reads: all of them, or one on a Cluster.
        cluster = isinstance(client, RedisCluster)
        self._reads = [[name] for name in self._events] if cluster else [self._events]
        self._turn = 0  # rotates the partitions a claim's remainder goes to

    @property
    def readers(self) -> range:
        """The readers ``read`` serves, each blocking on its own streams: one on a single
        server, one per partition on a Cluster."""
        return range(len(self._reads))

    # -- queuing, from the events streams --------------------------------------------------
    async def ensure_group(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in self._events:
                pipe.xgroup_create(name, WEBHOOKS_GROUP, id="0", mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply

    async def read(self, consumer: str, count: int, block_ms: int, reader: int = 0) -> list[Event]:
        """New events of ``reader``'s streams for this consumer (the group is recreated if
        a stream vanished)."""
        try:
            reply = await self._redis.xreadgroup(
                WEBHOOKS_GROUP,
                consumer,
                dict.fromkeys(self._reads[reader], ">"),
                count=count,
                block=block_ms,
            )
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        return [
            Event(self._parts[name], entry_id, fields)
            for name, entries in cast(list[Any], reply or [])
            for entry_id, fields in entries
        ]

    async def reclaim(self, consumer: str, count: int) -> list[Event]:
        """Events another (dead) gateway read but never acknowledged."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in self._events:
                pipe.xautoclaim(name, WEBHOOKS_GROUP, consumer, RECLAIM_IDLE_MS, count=count)
            replies = await pipe.execute()
        return [
            Event(part, entry_id, fields)
            for part, reply in enumerate(replies)
            for entry_id, fields in reply[1]
            if fields
        ]

    async def queue(self, entries: list[Event]) -> int:
        """Queue the deliveries these events call for, then acknowledge them all."""
        runs = sorted(
            {
                e.fields[b"id"].decode()
                for e in entries
                if e.fields.get(b"kind") == b"run"
                and e.fields.get(b"state") in _TERMINAL
                and b"id" in e.fields
            }
        )
        queued = 0
        for run_id in await self._wanting(runs):
            queued += await self._queue_one(run_id)
        await self._ack(entries)
        return queued

    async def _ack(self, entries: list[Event]) -> None:
        by_part: dict[int, list[bytes]] = defaultdict(list)
        for e in entries:
            by_part[e.part].append(e.id)
        if not by_part:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for part, ids in by_part.items():
                pipe.xack(self._events[part], WEBHOOKS_GROUP, *ids)
            await pipe.execute()

    async def _wanting(self, run_ids: list[str]) -> list[str]:
        """The runs that have a callback URL and no webhook yet, read in one round trip:
        every run's finish passes here, and most have no callback."""
        if not run_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hmget(self._keys.run(run_id), [p.F_CALLBACK, p.F_WEBHOOK])
            replies = cast(list[list[bytes | None]], await pipe.execute())
        return [i for i, (url, done) in zip(run_ids, replies, strict=True) if url and not done]

    async def _queue_one(self, run_id: str) -> int:
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.run(run_id)))
        callback = fields.get(p.F_CALLBACK.encode())
        if not callback or fields.get(p.F_WEBHOOK.encode()):  # changed since _wanting
            return 0
        url = callback.decode()
        view = webhook_view(url)
        payload = msgspec.json.encode({**run_json(run_id, fields, self._codec), "webhook": view})
        call = plans.webhook_enqueue(
            self._keys, run_id, url, payload, self._ttl_s, msgspec.json.encode(view)
        )
        created = await self._scripts(call)
        return int(created)

    # -- attempts ------------------------------------------------------------------------------
    async def claim(self, limit: int, lease_ms: int) -> tuple[list[str], int]:
        """Up to ``limit`` due deliveries, and when (ms) this claim on them lapses. Each
        partition is asked for its share, in one round trip; the partitions that filled
        theirs (and may hold more) are then asked for what is left."""
        now = p.now_ms()
        claimed: list[str] = []
        parts: list[int] = list(self._keys.all_partitions)
        self._turn += 1
        while parts and (left := limit - len(claimed)) > 0:
            asked = shares(left, parts, self._turn)
            calls = [plans.webhook_claim(self._keys, k, now, lease_ms, n) for k, n in asked.items()]
            found = await self._scripts.many(calls)
            for ids in found:
                claimed += ids
            parts = [k for (k, n), ids in zip(asked.items(), found, strict=True) if len(ids) == n]
        return claimed, now + lease_ms

    async def release(self, claims: Sequence[tuple[str, int]], due_ms: int | None = None) -> int:
        """Make claimed deliveries (run id, lease end) due again, now or at ``due_ms``, each
        only if no attempt was recorded since; returns how many were handed back."""
        due = p.now_ms() if due_ms is None else due_ms
        return sum(await self._scripts.many(plans.webhook_release(self._keys, due, claims)))

    async def next_due(self) -> int | None:
        """When the earliest pending delivery is due (ms), or None when none is pending;
        a first attempt waiting is due now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for part in self._keys.all_partitions:
                pipe.zcard(self._keys.webhooks_fresh(part))
                pipe.zrange(self._keys.webhooks_due(part), 0, 0, withscores=True)
            replies = await pipe.execute()
        if any(replies[::2]):
            return p.now_ms()
        firsts = [int(first[0][1]) for first in replies[1::2] if first]
        return min(firsts, default=None)

    async def load(self, run_ids: list[str]) -> list[Delivery]:
        """The claimed deliveries, read in one round trip; any that expired (or are
        malformed) are dropped from the due zsets, as nothing is left to deliver."""
        if not run_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hgetall(self._keys.webhook(run_id))
            raws = cast(list[dict[bytes, bytes]], await pipe.execute())
        found = [_delivery(i, raw) if raw else None for i, raw in zip(run_ids, raws, strict=True)]
        await self._forget([i for i, d in zip(run_ids, found, strict=True) if d is None])
        return [d for d in found if d is not None]

    async def _forget(self, run_ids: list[str]) -> None:
        by_part: dict[int, list[str]] = defaultdict(list)
        for run_id in run_ids:
            by_part[self._keys.partition(run_id)].append(run_id)
        if not by_part:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for part, ids in by_part.items():
                pipe.zrem(self._keys.webhooks_due(part), *ids)
            await pipe.execute()

    async def record(
        self, d: Delivery, attempt: dict[str, Any], state: str, next_ms: int | None
    ) -> bool:
        """Store attempt number ``d.attempts + 1``; ``next_ms`` None ends the delivery."""
        log = [*d.log, attempt]
        view = webhook_view(d.url, state, log)
        call = plans.webhook_record(
            self._keys,
            d.run_id,
            d.attempts + 1,
            msgspec.json.encode(log),
            msgspec.json.encode(view),
            next_ms,
        )
        return await self._scripts(call)
