"""Webhook deliveries in Redis: queued from the events stream, claimed, recorded.

- Every gateway reads the events stream through the consumer group ``webhooks``; for each
  terminal run event whose run has a ``callback_url`` it queues a delivery (a hash holding
  the URL and the frozen payload, and the run id in the fresh zset) with
  ``webhook_enqueue.lua``, then acknowledges the event. A gateway that dies between
  reading and acknowledging leaves the event pending; a live one claims it after
  ``RECLAIM_IDLE_MS``. Queuing twice is harmless: the script acts once per run.
- ``webhook_claim.lua`` hands each due delivery to one gateway by moving its due time a
  lease ahead (a first attempt moves from the fresh zset to the due zset as it is
  claimed, and first attempts get at least half of every claim); ``webhook_record.lua``
  stores the attempt only if no other gateway stored that attempt number first, then
  reschedules, or ends, the delivery. A gateway that stops hands the claims of its
  unfinished attempts back with ``webhook_release.lua``; one that dies leaves them to
  lapse with the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import redis.asyncio as aredis
import redis.exceptions as redis_errors

from sdk import protocol as p
from sdk import scripts, states
from sdk.keys import Keys
from sdk.runs import run_json, webhook_view
from sdk.serializers import Codec

Entry = tuple[bytes, dict[bytes, bytes]]
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


class Deliveries:
    def __init__(self, client: aredis.Redis, keys: Keys, codec: Codec, ttl_s: int) -> None:
        self._redis = client
        self._keys = keys
        self._codec = codec
        self._ttl_s = ttl_s
        self._scripts = {
            n: client.register_script(scripts.source(n))
            for n in ("webhook_enqueue", "webhook_claim", "webhook_record", "webhook_release")
        }

    # -- queuing, from the events stream ---------------------------------------------------
    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(
                self._keys.events, self._keys.webhooks_group, id="0", mkstream=True
            )
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New events for this consumer (the group is recreated if the stream vanished)."""
        try:
            reply = await self._redis.xreadgroup(
                self._keys.webhooks_group,
                consumer,
                {self._keys.events: ">"},
                count=count,
                block=block_ms,
            )
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        return [e for _s, entries in cast(list[Any], reply or []) for e in entries]

    async def reclaim(self, consumer: str, count: int) -> list[Entry]:
        """Events another (dead) gateway read but never acknowledged."""
        reply = await self._redis.xautoclaim(
            self._keys.events, self._keys.webhooks_group, consumer, RECLAIM_IDLE_MS, count=count
        )
        return [e for e in cast(list[Entry], reply[1]) if e[1]]

    async def queue(self, entries: list[Entry]) -> int:
        """Queue the deliveries these events call for, then acknowledge them all."""
        runs = sorted(
            {
                f[b"id"].decode()
                for _eid, f in entries
                if f.get(b"kind") == b"run" and f.get(b"state") in _TERMINAL and b"id" in f
            }
        )
        queued = 0
        for run_id in await self._wanting(runs):
            queued += await self._queue_one(run_id)
        if entries:
            await self._redis.xack(
                self._keys.events, self._keys.webhooks_group, *[eid for eid, _f in entries]
            )
        return queued

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
        run_key = self._keys.run(run_id)
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(run_key))
        callback = fields.get(p.F_CALLBACK.encode())
        if not callback or fields.get(p.F_WEBHOOK.encode()):  # changed since _wanting
            return 0
        url = callback.decode()
        view = webhook_view(url)
        payload = msgspec.json.encode({**run_json(run_id, fields, self._codec), "webhook": view})
        keys = [run_key, self._keys.webhook(run_id), self._keys.webhooks_fresh]
        args: list[Any] = [run_id, url, payload, p.now_ms(), self._ttl_s]
        args.append(msgspec.json.encode(view))
        return int(await self._scripts["webhook_enqueue"](keys, args))

    # -- attempts ------------------------------------------------------------------------------
    async def claim(self, limit: int, lease_ms: int) -> tuple[list[str], int]:
        """Up to ``limit`` due deliveries, and when (ms) this claim on them lapses."""
        now = p.now_ms()
        zsets = [self._keys.webhooks_due, self._keys.webhooks_fresh]
        ids = await self._scripts["webhook_claim"](zsets, [now, lease_ms, limit])
        return [i.decode() for i in cast(list[bytes], ids)], now + lease_ms

    async def release(self, claims: Sequence[tuple[str, int]], due_ms: int | None = None) -> int:
        """Make claimed deliveries (run id, lease end) due again, now or at ``due_ms``, each
        only if no attempt was recorded since; returns how many were handed back."""
        args: list[Any] = [p.now_ms() if due_ms is None else due_ms]
        for run_id, until in claims:
            args += [run_id, until]
        return int(await self._scripts["webhook_release"]([self._keys.webhooks_due], args))

    async def next_due(self) -> int | None:
        """When the earliest pending delivery is due (ms), or None when none is pending;
        a first attempt waiting is due now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._keys.webhooks_fresh)
            pipe.zrange(self._keys.webhooks_due, 0, 0, withscores=True)
            fresh, first = await pipe.execute()
        if fresh:
            return p.now_ms()
        return int(first[0][1]) if first else None

    async def load(self, run_ids: list[str]) -> list[Delivery]:
        """The claimed deliveries, read in one round trip; any that expired (or are
        malformed) are dropped from the due zset, as nothing is left to deliver."""
        if not run_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hgetall(self._keys.webhook(run_id))
            raws = cast(list[dict[bytes, bytes]], await pipe.execute())
        found = [_delivery(i, raw) if raw else None for i, raw in zip(run_ids, raws, strict=True)]
        gone = [i for i, d in zip(run_ids, found, strict=True) if d is None]
        if gone:
            await self._redis.zrem(self._keys.webhooks_due, *gone)
        return [d for d in found if d is not None]

    async def record(
        self, d: Delivery, attempt: dict[str, Any], state: str, next_ms: int | None
    ) -> bool:
        """Store attempt number ``d.attempts + 1``; ``next_ms`` None ends the delivery."""
        log = [*d.log, attempt]
        view = webhook_view(d.url, state, log)
        keys = [self._keys.webhook(d.run_id), self._keys.run(d.run_id), self._keys.webhooks_due]
        args: list[Any] = [
            d.run_id,
            d.attempts + 1,
            msgspec.json.encode(log),
            msgspec.json.encode(view),
            "" if next_ms is None else next_ms,
        ]
        return bool(await self._scripts["webhook_record"](keys, args))
