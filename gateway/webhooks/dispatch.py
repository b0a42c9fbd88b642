"""The webhook dispatcher of one gateway process: two loops started by the lifespan.

``intake`` queues deliveries from the events streams (consumer group ``webhooks``; one
intake loop per reader of ``Deliveries``, one on a single server);
``deliver`` claims due deliveries and makes one attempt each, at most ``CONCURRENCY`` at a
time (``PER_RECEIVER`` of them to one receiver) and at most ``webhook_rate`` started a
second, claimed ``BURST`` at a time. The rate cap bounds the share of the event loop
(which also serves the API) that webhooks can take, whatever the backlog: after a long
receiver outage the overdue retries are spread out, not started as a thundering herd. Both
loops survive Redis outages (backing off) and any surprise (logged). Stopping cancels
attempts in flight and hands their claims back, due at once, so another gateway (or this
one, restarted) makes them again without waiting for the lease, with the same
``webhook-id``. A gateway that dies leaves its claims to lapse after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import redis.exceptions as redis_errors

from gateway.waiters import Event
from gateway.webhooks.deliveries import Deliveries, Delivery
from gateway.webhooks.pace import TokenBucket
from gateway.webhooks.schedule import Schedule
from gateway.webhooks.sender import DELIVERED, DISABLED, Attempt, Sender
from sdk import outbound
from sdk.config import Settings
from sdk.errors import InvalidCallback
from sdk.protocol import now_ms, rfc3339

log = logging.getLogger(__name__)

CONCURRENCY = 64  # attempts in flight (slow receivers hold them up to the timeout)
PER_RECEIVER = 16  # of those, to one receiver (host and port): a slow one cannot hold all
DEFER_MS = 1_000  # a delivery to a receiver at its cap is due again this much later
BURST = 10  # attempts claimed and started together
BLOCK_MS = 5_000
BATCH = 100
RECLAIM_EVERY = 5.0  # seconds between looks for events a dead gateway left unacknowledged
IDLE_POLL = 1.0  # at most this long between looks at the due zset
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
RELEASE_TIMEOUT = 2.0  # seconds a stopping gateway spends handing its claims back


class _Held(NamedTuple):
    """An attempt in flight: its delivery, its claim's lease end (ms), its receiver."""

    run_id: str
    until: int
    receiver: str


def _receiver(url: str) -> str:
    """Who an attempt goes to, as the per-receiver cap counts: host and port."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


async def forever(step: Callable[[], Awaitable[None]], name: str) -> None:
    """Call ``step`` again and again; back off while Redis is unreachable."""
    delay = BACKOFF_MIN
    while True:
        try:
            await step()
            delay = BACKOFF_MIN
            continue
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            if delay == BACKOFF_MIN:
                log.warning("%s: Redis unreachable, retrying: %s", name, exc)
        except Exception:  # the loop must outlive any surprise; log it and go on
            log.exception("%s failed; going on", name)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX)


class Dispatcher:
    def __init__(self, deliveries: Deliveries, settings: Settings) -> None:
        if not settings.webhook_secret:
            raise ValueError("webhooks need a secret")
        self._deliveries = deliveries
        self._schedule = Schedule(
            settings.webhook_backoff, settings.webhook_max_attempts, settings.webhook_max_span
        )
        self._allow = outbound.AllowList.parse(settings.webhook_allow)
        self._sender = Sender(settings.webhook_secret, settings.webhook_timeout)
        self._lease_ms = int((2 * settings.webhook_timeout + outbound.RESOLVE_TIMEOUT + 5) * 1000)
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._wake = asyncio.Event()
        self._bucket = TokenBucket(settings.webhook_rate, BURST)  # per process
        self._slot_wanted = False  # the delivery loop waits for an attempt to end
        self._sleep_until = 0.0  # ms; the delivery loop sleeps until then (0: it is busy)
        self._tasks: dict[asyncio.Task[None], _Held] = {}
        self._per_receiver: Counter[str] = Counter()  # attempts in flight to each
        self._loops: list[asyncio.Task[None]] = []
        self._reclaimed_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._loops = [
            asyncio.create_task(forever(self._deliver, "webhook delivery"), name="webhook-send"),
            *(
                asyncio.create_task(
                    forever(functools.partial(self._intake, reader), "webhook intake"),
                    name=f"webhook-intake-{reader}",
                )
                for reader in self._deliveries.readers
            ),
        ]

    async def stop(self) -> None:
        held = [(h.run_id, h.until) for h in self._tasks.values()]
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        await self._sender.aclose()
        if held:  # best effort: if Redis is away, the claims lapse with the lease
            with contextlib.suppress(redis_errors.RedisError, OSError, TimeoutError):
                released = await asyncio.wait_for(self._deliveries.release(held), RELEASE_TIMEOUT)
                log.info("handed back %d webhook attempts in flight", released)

    # -- intake ------------------------------------------------------------------------------
    async def _intake(self, reader: int) -> None:
        await self._deliveries.ensure_group()
        while True:
            loop_time = asyncio.get_running_loop().time()
            if reader == 0 and loop_time - self._reclaimed_at >= RECLAIM_EVERY:
                self._reclaimed_at = loop_time  # one reader reclaims for every stream
                await self._queue(await self._deliveries.reclaim(self._consumer, BATCH))
            entries = await self._deliveries.read(self._consumer, BATCH, BLOCK_MS, reader)
            await self._queue(entries)

    async def _queue(self, entries: list[Event]) -> None:
        if entries and await self._deliveries.queue(entries):
            self._wake.set()

    # -- delivery ------------------------------------------------------------------------------
    async def _deliver(self) -> None:
        while True:
            free = CONCURRENCY - len(self._tasks)
            if free <= 0:
                await self._wait_for_slot()
                continue
            want = min(free, BURST)
            await asyncio.sleep(self._bucket.wait(want))  # sleep(0) yields between batches
            claimed, until = await self._deliveries.claim(want, self._lease_ms)
            # A delivery put back costs a claim, as an attempt does: the rate also bounds
            # how fast a backlog for receivers at their cap goes round.
            self._bucket.take(len(claimed))
            deferred = []
            for delivery in await self._deliveries.load(claimed):
                receiver = _receiver(delivery.url)
                if self._per_receiver[receiver] >= PER_RECEIVER:
                    deferred.append((delivery.run_id, until))
                    continue
                self._per_receiver[receiver] += 1
                task = asyncio.create_task(self._attempt(delivery))
                self._tasks[task] = _Held(delivery.run_id, until, receiver)
                task.add_done_callback(self._done)
            if deferred:  # no attempt made, none recorded: just due a little later
                await self._deliveries.release(deferred, now_ms() + DEFER_MS)
            if len(claimed) < want:
                await self._sleep()  # nothing else is due now

    async def _wait_for_slot(self) -> None:
        self._slot_wanted = True
        self._wake.clear()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
        finally:
            self._slot_wanted = False

    def _done(self, task: asyncio.Task[None]) -> None:
        held = self._tasks.pop(task, None)
        if held is not None:
            self._per_receiver[held.receiver] -= 1
            if not self._per_receiver[held.receiver]:
                del self._per_receiver[held.receiver]
        if self._slot_wanted:
            self._wake.set()

    def _due_at(self, at_ms: int) -> None:
        """A delivery was rescheduled: wake the delivery loop if it sleeps past that."""
        if at_ms < self._sleep_until:
            self._wake.set()

    async def _sleep(self) -> None:
        """Until the next delivery is due, a new one is queued, or ``IDLE_POLL`` (another
        gateway may have queued or rescheduled one)."""
        self._wake.clear()
        self._sleep_until = now_ms() + IDLE_POLL * 1000
        try:
            due = await self._deliveries.next_due()
            if due is not None:
                self._sleep_until = min(self._sleep_until, max(due, now_ms()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), (self._sleep_until - now_ms()) / 1000)
        finally:
            self._sleep_until = 0.0

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            await self._record(delivery, await self._try(delivery))
        except Exception:  # its claim lapses and the attempt is made again later
            log.exception("webhook attempt for run %s failed", delivery.run_id)

    async def _try(self, d: Delivery) -> Attempt:
        try:
            target = await outbound.check(d.url, self._allow)  # DNS may have changed
        except InvalidCallback as exc:
            return Attempt(rfc3339(now_ms()) or "", None, 0, exc.message, "retry")
        return await self._sender.post(target, d.msg_id, d.payload)

    async def _record(self, d: Delivery, attempt: Attempt) -> None:
        number = d.attempts + 1
        if attempt.outcome in (DELIVERED, DISABLED):
            state, next_ms = attempt.outcome, None
        else:
            next_ms = self._schedule.next_at(number, d.first_at, now_ms(), attempt.retry_after)
            state = "pending" if next_ms is not None else "failed"
        if not await self._deliveries.record(d, attempt.public(), state, next_ms):
            log.warning("webhook attempt %d of run %s was recorded elsewhere", number, d.run_id)
        elif next_ms is not None:
            self._due_at(next_ms)
        else:
            log.info("webhook of run %s %s after %d attempt(s)", d.run_id, state, number)
