"""The asyncio pool's consumer: ``-c`` slots as coroutines on one event loop, one fetcher.

A coroutine per slot would otherwise mean a blocking ``XREADGROUP`` (and a connection)
per idle slot. Here one fetcher reads for every slot, as many runs as there are slots
waiting plus ``prefetch``, into an inbox (``executors/inbox.py``); the slots take runs
from it. The slots' script calls are pipelined (``executors/async_lane.py`` on one
server, the auto-pipeline of ``sdk/pipelining.py`` on a Cluster), so a thousand slots
cost a few round trips per loop tick.

Each slot still makes one script call per run, as the sync consumer does
(``executors/consumer.py``): the outcome of its last run is held and sent with the start
of its next one, and sent on its own when the inbox is empty. Runs fetched but not
started when the worker stops are handed back to their streams.

Through a Redis outage a slot retries the call it was making (its held outcome is kept);
the fetcher backs off. Nothing a slot started is given up until the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import redis

from executors import entries
from executors.backoff import Backoff
from executors.consumer import SlotConfig, partition_streams
from executors.inbox import Inbox, Signal
from executors.pools.base import LoopSlots
from executors.runner import Runner
from sdk import protocol as p
from sdk import states
from sdk.clients import UNREACHABLE, AsyncClient
from sdk.errors import CeleriacError
from sdk.middleware import Outcome
from sdk.protocol import plans
from sdk.protocol.keys import GROUP, Keys
from sdk.protocol.plans import Limits, ScriptCall, Start, StreamEntry

log = logging.getLogger("celeriac.consumer")
R = TypeVar("R")


class AsyncScriptRunner(Protocol):
    """Runs a script call on the loop (``AsyncLane`` on one server, ``AsyncScripts``)."""

    async def __call__(self, call: ScriptCall[R]) -> R: ...


MAX_FETCH = 512  # runs per fetch call


class AsyncConsumer:
    def __init__(
        self,
        *,
        client: AsyncClient,
        scripts: AsyncScriptRunner,
        keys: Keys,
        limits: Limits,
        runners: Callable[[int], Runner],
        config: SlotConfig,
        slots: LoopSlots,
    ) -> None:
        self.client = client
        self.scripts = scripts
        self.keys = keys
        self.limits = limits
        self.runners = runners
        self.config = config
        self.slots = slots
        self._parts = [partition_streams(keys, config.queues, n) for n in keys.all_partitions]
        self._streams = [s for streams in self._parts for s in streams]
        self._order = {s: i // len(config.queues) for ss in self._parts for i, s in enumerate(ss)}
        self._inbox: Inbox[StreamEntry] = Inbox()
        self._low = 0
        self._blocking = False  # the fetcher waits on an empty queue
        self._wanted = asyncio.Event()  # set when the inbox may need more
        self._fetches = 0

    # -- the whole consumer ------------------------------------------------------------------
    async def run(self, concurrency: int, stop: asyncio.Event) -> None:
        """Consume with ``concurrency`` slots until ``stop`` is set; each slot finishes its
        run and stores its outcome, and runs fetched but not started are handed back."""
        watch = asyncio.ensure_future(stop.wait())
        watch.add_done_callback(lambda _: self._wanted.set())
        workers = [
            asyncio.create_task(self._slot(index, stop), name=f"slot-{index}")
            for index in range(concurrency)
        ]
        try:
            await self._feed(stop, concurrency)
        finally:
            await self._hand_back(self._inbox.close())
            await asyncio.gather(*workers)
            watch.cancel()

    # -- the fetcher -------------------------------------------------------------------------
    async def _feed(self, stop: asyncio.Event, concurrency: int) -> None:
        batch_min = max(1, min(32, concurrency // 4))
        # Runs kept ready besides one per waiting slot, so that a slot finishing a run
        # mostly finds the next one there and sends its outcome with that start. More
        # (a quarter of the slots) was measured no faster at -c 50 or -c 1000.
        ahead = self.config.prefetch
        self._low = ahead - batch_min  # slots wake the fetcher when the inbox is this low
        backoff = Backoff()
        next_reclaim = time.monotonic() + self.config.reclaim_every_s
        first = True
        while not stop.is_set():
            waiting = self._inbox.waiting
            want = waiting + ahead - len(self._inbox)
            if want < batch_min and not (waiting and not self._inbox):
                self._wanted.clear()
                await self._wanted.wait()
                continue
            count = min(want, MAX_FETCH)
            try:
                if first:  # runs a previous life of this worker left unfinished
                    batch, first = await self._own_pending(), False
                elif time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + self.config.reclaim_every_s
                    batch = await self._reclaim(count)
                else:
                    batch = await self._fetch(count)
                    if not batch and not stop.is_set():
                        self._inbox.release_holders()  # nothing queued: held outcomes go now
                        batch = await self._block(count)
                backoff.reset()
            except UNREACHABLE as exc:
                self._inbox.release_holders()  # no runs on their way either
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff.delay)
                await backoff.asleep(stop)
                continue
            except redis.ResponseError as exc:
                self._inbox.release_holders()  # no runs on their way either
                if "NOGROUP" not in str(exc):
                    raise
                await ensure_groups(self.client, self._streams)  # queue was purged
                continue
            for entry in batch:
                self._inbox.put(entry)

    async def _fetch(self, count: int) -> list[StreamEntry]:
        """New runs, highest priority first, one script call per partition tried
        (docs/reliability.md states the policy)."""
        self._fetches += 1
        fair = self._fetches % self.config.fair_every == 0
        parts = len(self._parts)
        for i in range(parts):
            part = self._parts[(self._fetches + i) % parts]
            found = await self.scripts(plans.fetch(part, self.config.name, count, fair))
            if found:
                return self._sorted(found)
        return []

    async def _block(self, count: int) -> list[StreamEntry]:
        """Every partition was empty: wait for new runs on one of them, up to ``block_ms``."""
        self._blocking = True
        try:
            reply = await self.client.xreadgroup(
                GROUP,
                self.config.name,
                dict.fromkeys(self._parts[self._fetches % len(self._parts)], ">"),
                count=count,
                block=self.config.block_ms,
            )
        finally:
            self._blocking = False
        return self._entries(reply)

    async def _reclaim(self, count: int) -> list[StreamEntry]:
        """Claim runs left pending by dead workers (live ones keep their claims fresh)."""
        claimed: list[StreamEntry] = []
        for stream in self._streams:
            reply = await self.client.xautoclaim(
                stream,
                GROUP,
                self.config.name,
                self.config.reclaim_idle_ms,
                count=count - len(claimed),
            )
            claimed += self._entries([(stream.encode(), reply[1])])
            if len(claimed) >= count:
                break
        if claimed:
            log.warning("reclaimed %d runs abandoned by a dead worker", len(claimed))
        return claimed

    async def _own_pending(self) -> list[StreamEntry]:
        found: list[StreamEntry] = []
        for streams in self._parts:  # one partition (one Cluster slot) a call
            reply = await self.client.xreadgroup(
                GROUP,
                self.config.name,
                dict.fromkeys(streams, "0"),
                count=10_000,
            )
            found += self._entries(reply)
        return self._sorted(found)

    def _entries(self, reply: Any) -> list[StreamEntry]:
        """Flatten an XREADGROUP reply, highest priority stream first."""
        return self._sorted(
            [
                StreamEntry(stream.decode(), entry_id.decode(), fields)
                for stream, items in reply or ()
                for entry_id, fields in items
                if fields  # an entry deleted while pending comes back empty
            ]
        )

    def _sorted(self, found: list[StreamEntry]) -> list[StreamEntry]:
        found.sort(key=lambda e: self._order.get(e.stream, 0))
        return found

    async def _hand_back(self, left: list[StreamEntry]) -> None:
        """Return runs fetched but never started to their streams, for other workers."""
        for entry in left:
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.xadd(entry.stream, entry.fields)  # type: ignore[arg-type]
                    pipe.xack(entry.stream, GROUP, entry.id)
                    pipe.xdel(entry.stream, entry.id)
                    await pipe.execute()
            except UNREACHABLE:
                log.warning("could not hand back run entry %s: it stays pending", entry.id)
        if left:
            log.info("handed back %d prefetched runs", len(left))

    # -- the slots ---------------------------------------------------------------------------
    async def _next(self, slot: _Slot) -> StreamEntry | Signal:
        """A slot's next run, waiting for the fetcher if none is ready; for a slot that
        holds an outcome, ``SEND_HELD`` if the fetcher finds nothing first."""
        entry = self._inbox.get_nowait()
        if entry is not None:
            if len(self._inbox) <= self._low:
                self._wanted.set()
            return entry
        if self._blocking:  # no runs on their way: nothing to send the outcome with
            await slot.io(slot.send_held)
        self._wanted.set()
        return await self._inbox.get(holding=slot.held is not None)

    async def _slot(self, index: int, stop: asyncio.Event) -> None:
        with self.slots.slot(index):
            slot = _Slot(self, self.runners(index), stop)
            backoff = Backoff(0.5, 30.0)
            while True:
                entry = await self._next(slot)
                if entry is Signal.SEND_HELD:
                    await slot.io(slot.send_held)
                    continue
                if entry is Signal.CLOSED:
                    await slot.io(slot.send_held, give_up=True)
                    return
                try:
                    await slot.handle(entry)
                    backoff.reset()
                except Exception:  # not the task's failure (the runner stores those)
                    log.exception(
                        "slot %d failed on entry %s; it tries again in %.1fs",
                        index,
                        entry.id,
                        backoff.delay,
                    )
                    if not await backoff.asleep(stop):  # then again, as a sync slot would
                        self._inbox.put(entry)


class _Slot:
    """One slot's state: the outcome it holds for its next call."""

    def __init__(self, consumer: AsyncConsumer, runner: Runner, stop: asyncio.Event) -> None:
        self.consumer = consumer
        self.runner = runner
        self.stop = stop
        self.keys = consumer.keys
        self.held: ScriptCall[bool] | None = None
        self.held_run = ""

    async def handle(self, entry: StreamEntry) -> None:
        readable = entries.read(entry)
        if readable == "leave":
            return
        if readable == "ack":
            await self.io(lambda: self.ack(entry))
            return
        message, body = readable
        if entries.expired(message):
            self.finish(entry, message, Outcome(states.EXPIRED))
            return
        keys, limits, config = self.keys, self.consumer.limits, self.consumer.config
        call = plans.start(keys, limits, message, self.runner.worker_id, config.max_deliveries)
        part = keys.partition(message.id)
        try:
            start: Start | None = await self.step(call, part)
        except UNREACHABLE:
            start = await self.io(lambda: self.step(call, part))
        if start is None:  # the worker stops during an outage: the run stays pending
            return
        settled = entries.settle_start(start, message, self.runner.codec, config.max_deliveries)
        if settled == "ack":
            await self.io(lambda: self.ack(entry))
        elif settled != "run":
            self.finish(entry, message, settled)
        else:
            slots = self.consumer.slots
            if message.chord_body:  # a chord's body: its header's results go first
                read = plans.chord_read(keys, message.id)
                header = await self.io(lambda: self.consumer.scripts(read))
                if header is None and self.stop.is_set():
                    return  # stopped during an outage: the run stays pending
                failed = entries.chord_failed(header)
                if failed is not None:  # a header run did not succeed: so does the chord
                    self.finish(entry, message, failed)
                    return
                try:  # the run gets the results; a retry keeps the body without them
                    run, run_body = entries.with_header_results(
                        message, body, header, self.runner.codec
                    )
                except CeleriacError as exc:
                    self.finish(entry, message, self.runner.failure(exc, message))
                    return
            else:
                run, run_body = message, body
            outcome = await self.runner.run_on_loop(run, run_body, start.attempts, slots)
            if outcome.state == states.RETRY:
                retry = entries.retry(keys, limits, entry, message, body, outcome)
                await self.io(lambda: self.consumer.scripts(retry))
            else:
                self.finish(entry, message, outcome)

    async def step(self, then: ScriptCall[R], part: int) -> R:
        """``then`` after storing the held outcome: in one call when both are of one
        partition (one Cluster slot), else the outcome first in a call of its own."""
        if self.held is not None and self.keys.partition(self.held_run) != part:
            await self.send_held()
        _stored, reply = await self.consumer.scripts(plans.step(self.held, then))
        self.held = None
        return reply  # type: ignore[return-value]  # then's reply: it was given

    def finish(self, entry: StreamEntry, message: p.Message, outcome: Outcome) -> None:
        """Hold the outcome for the next call."""
        limits, codec = self.consumer.limits, self.runner.codec
        self.held = entries.finish(self.keys, limits, entry, message, outcome, codec)
        self.held_run = message.id

    async def send_held(self) -> None:
        if self.held is not None:
            await self.consumer.scripts(plans.step(self.held, None))
            self.held = None

    async def ack(self, entry: StreamEntry) -> None:
        async with self.consumer.client.pipeline(transaction=True) as pipe:
            pipe.xack(entry.stream, GROUP, entry.id)
            pipe.xdel(entry.stream, entry.id)
            await pipe.execute()

    async def io(self, call: Callable[[], Awaitable[R]], give_up: bool = False) -> R | None:
        """``call()``, tried again through Redis outages; None if the worker stops first
        (with ``give_up``, once the backoff is at its longest: the worker is leaving)."""
        backoff = Backoff()
        while True:
            try:
                return await call()
            except UNREACHABLE as exc:
                stopping = self.stop.is_set()
                if stopping and (not give_up or backoff.delay >= backoff.most):
                    log.error("gave up on Redis (%s): unfinished runs will run again", exc)
                    if give_up:
                        self.held = None
                    return None
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff.delay)
                await backoff.asleep()


async def ensure_groups(client: AsyncClient, streams: Sequence[str]) -> None:
    """Create the consumer group on every stream, reading from the start of each."""
    for stream in streams:
        try:
            await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


__all__ = ["AsyncConsumer", "ensure_groups"]
