"""One execution slot: read runs from the queue streams, start, execute, finish.

Every slot is a consumer of its own (a prefork child, a thread) with its own Redis
connection, so no run crosses a process boundary on its way to execution. The outcome
is stored and the entry acknowledged in one script call: a run is never acknowledged
before its outcome is durable.

One round trip per run: a finished run's outcome is not sent on its own but with the
call that starts the next run, or reads the next batch (step.lua). Nothing executes in
between, so an outcome is as durable as before when the next run begins; a slot that
stops, or finds nothing to do, stores what it holds first.

With several key partitions (Redis Cluster), a fetch reads one partition per call,
starting from the next one each time; when all are empty the slot blocks on one of them,
a different one for each slot, so a worker with as many slots as partitions has one
waiting on each (runs in the others wait at most one block, ``block_ms``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psutil
import redis

from executors import entries
from executors.backoff import Backoff
from executors.lane import lane_for
from executors.pools.base import StopFlag
from executors.runner import Runner
from sdk import protocol as p
from sdk import states
from sdk.broker import Broker
from sdk.clients import UNREACHABLE, SyncClient
from sdk.errors import CeleriacError
from sdk.middleware import Outcome
from sdk.protocol import plans
from sdk.protocol.keys import GROUP, Keys
from sdk.protocol.plans import ScriptCall, StreamEntry

log = logging.getLogger("celeriac.consumer")
R = TypeVar("R")


@dataclass(frozen=True)
class SlotConfig:
    """What a slot needs besides its Redis client and runner."""

    name: str  # consumer name in the group: "<worker id>.<slot>"
    queues: Sequence[str]
    index: int = 0  # the slot's number in its worker: which partition it blocks on first
    prefetch: int = 4
    block_ms: int = 1000
    max_runs: int = 0  # leave after this many runs (prefork --max-tasks-per-child); 0 = never
    max_deliveries: int = 5  # deliveries of one attempt before the run is dead-lettered
    reclaim_idle_ms: int = 15_000  # a pending entry idle this long has lost its worker
    reclaim_every_s: float = 5.0
    max_memory_mb: int = 0  # leave once the process is bigger (--max-memory-per-child); 0 = never
    fair_every: int = 10  # every Nth fetch serves each non-empty priority once


def partition_streams(keys: Keys, queues: Sequence[str], part: int) -> list[str]:
    """A partition's streams of ``queues``, by priority (highest first), then queue."""
    by_queue = [keys.streams(part, q) for q in queues]
    return [streams[i] for i in range(len(by_queue[0])) for streams in by_queue]


def all_streams(keys: Keys, queues: Sequence[str]) -> list[str]:
    """Every stream of ``queues`` in every partition."""
    return [s for part in keys.all_partitions for s in partition_streams(keys, queues, part)]


def ensure_groups(client: SyncClient, streams: Sequence[str]) -> None:
    """Create the consumer group on every stream, reading from the start of each."""
    for stream in streams:
        try:
            client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class Consumer:
    def __init__(
        self,
        *,
        broker: Broker,
        runner: Runner,
        config: SlotConfig,
    ) -> None:
        self.broker = broker
        self.runner = runner
        self.config = config
        self.runs = 0
        keys = broker.keys
        self._parts = [partition_streams(keys, config.queues, n) for n in keys.all_partitions]
        self._streams = [s for streams in self._parts for s in streams]
        # Rank of a stream: 0 for priority 9, whatever its queue; batches run in rank order.
        self._order = {s: i // len(config.queues) for ss in self._parts for i, s in enumerate(ss)}
        self._fetches = 0
        self._next_reclaim = time.monotonic() + config.reclaim_every_s
        self._outcome: ScriptCall[bool] | None = None  # a finish, sent with the next step
        self._outcome_run = ""
        self._lane = lane_for(broker.redis)  # a lane per node on a Redis Cluster

    # -- the loop ------------------------------------------------------------------------------
    def run(self, stop: StopFlag) -> None:
        """Consume until ``stop`` is set; prefetched runs not started are handed back."""
        backoff = Backoff()
        pending = self._own_pending()  # runs a previous life of this slot left unfinished
        while not stop.is_set() and not self._retiring():
            try:
                batch = pending or self._reclaim() or self._fetch()
                pending = []
                for i, entry in enumerate(batch):
                    if stop.is_set() or self._retiring():
                        self._hand_back(batch[i:])
                        break
                    self._handle(entry, stop)
                backoff.reset()
            except UNREACHABLE as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff.delay)
                backoff.sleep(stop)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ensure_groups(self.broker.redis, self._streams)  # queue was purged
        self._store_outcome(stop)
        self._lane.close()

    def _retiring(self) -> bool:
        if 0 < self.config.max_runs <= self.runs:
            return True
        return (
            self.config.max_memory_mb > 0
            and self.runs > 0
            and _rss_mb() > self.config.max_memory_mb
        )

    def _fetch(self) -> list[StreamEntry]:
        """New runs, highest priority first across every queue, one script call per
        partition tried; blocks only when all are empty. docs/reliability.md states the
        policy."""
        self._fetches += 1
        fair = self._fetches % self.config.fair_every == 0
        count = len(self._parts)
        for i in range(count):
            part = (self._fetches + i) % count
            fetch = plans.fetch(self._parts[part], self.config.name, self.config.prefetch, fair)
            entries = self._step(fetch, part)
            if entries:
                entries.sort(key=lambda e: self._order.get(e.stream, 0))  # fair reads low first
                return entries
        blocking = self.broker.redis.xreadgroup(
            GROUP,
            self.config.name,
            dict.fromkeys(self._parts[(self.config.index + self._fetches) % count], ">"),
            count=self.config.prefetch,
            block=self.config.block_ms,
        )
        return self._entries(blocking)

    def _reclaim(self) -> list[StreamEntry]:
        """Claim runs left pending by dead workers (live ones keep their claims fresh)."""
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + self.config.reclaim_every_s
        claimed: list[StreamEntry] = []
        for stream in self._streams:
            reply = self.broker.redis.xautoclaim(
                stream,
                GROUP,
                self.config.name,
                self.config.reclaim_idle_ms,
                count=self.config.prefetch - len(claimed),
            )
            claimed += self._entries([(stream.encode(), reply[1])])
            if len(claimed) >= self.config.prefetch:
                break
        if claimed:
            log.warning("reclaimed %d runs abandoned by a dead worker", len(claimed))
        return claimed

    def _own_pending(self) -> list[StreamEntry]:
        found: list[StreamEntry] = []
        for streams in self._parts:  # one partition (one Cluster slot) a call
            try:
                reply = self.broker.redis.xreadgroup(
                    GROUP,
                    self.config.name,
                    dict.fromkeys(streams, "0"),
                    count=1000,
                )
            except (*UNREACHABLE, redis.ResponseError):
                continue
            found += self._entries(reply)
        found.sort(key=lambda e: self._order.get(e.stream, 0))
        return found

    def _entries(self, reply: Any) -> list[StreamEntry]:
        """Flatten an XREADGROUP reply, highest priority stream first."""
        entries = [
            StreamEntry(stream.decode(), entry_id.decode(), fields)
            for stream, items in reply or ()
            for entry_id, fields in items
            if fields  # an entry deleted while pending comes back empty
        ]
        entries.sort(key=lambda e: self._order.get(e.stream, 0))
        return entries

    # -- one run -------------------------------------------------------------------------------
    def _handle(self, entry: StreamEntry, stop: StopFlag) -> None:
        readable = entries.read(entry)
        if readable == "leave":
            return
        if readable == "ack":
            self._ack(entry.stream, entry.id)
            return
        message, body = readable
        if entries.expired(message):
            self._finish(entry, message, Outcome(states.EXPIRED), stop)
            return
        keys, limits, config = self.broker.keys, self.broker.limits, self.config
        start = self._step(
            plans.start(keys, limits, message, self.runner.worker_id, config.max_deliveries),
            keys.partition(message.id),
        )
        settled = entries.settle_start(start, message, self.runner.codec, config.max_deliveries)
        if settled == "ack":
            self._ack(entry.stream, entry.id)
        elif settled != "run":
            self._finish(entry, message, settled, stop)
        else:
            outcome = self._run(message, body, start.attempts)
            if outcome.state == states.RETRY:
                self.broker.scripts(entries.retry(keys, limits, entry, message, body, outcome))
            else:
                self._finish(entry, message, outcome, stop)
            self.runs += 1

    def _run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        if message.chord_body:  # a chord's body: its header's results go first
            header = self.broker.scripts(plans.chord_read(self.broker.keys, message.id))
            failed = entries.chord_failed(header)
            if failed is not None:  # a header run did not succeed: so does the chord
                return failed
            try:
                message, body = entries.with_header_results(
                    message, body, header, self.runner.codec
                )
            except CeleriacError as exc:
                return self.runner.failure(exc, message)
        return self.runner.run(message, body, attempts)

    def _step(self, then: ScriptCall[R], part: int) -> R:
        """Run ``then`` (a start or a fetch in partition ``part``) after storing the held
        outcome, if any: in the same call when it is of the same partition (one call
        must stay in one Cluster slot), else in a call of its own first."""
        if self._outcome is not None and self.broker.keys.partition(self._outcome_run) != part:
            self._send_outcome()
        _stored, reply = self._lane(plans.step(self._outcome, then))
        self._outcome = None
        return cast(R, reply)

    def _finish(
        self, entry: StreamEntry, message: p.Message, outcome: Outcome, stop: StopFlag
    ) -> None:
        """Hold the outcome for the next step; stored at once when nothing else comes."""
        self._store_outcome(stop)  # only after an outage: one outcome held at a time
        self._outcome = entries.finish(
            self.broker.keys, self.broker.limits, entry, message, outcome, self.runner.codec
        )
        self._outcome_run = message.id

    def _send_outcome(self) -> None:
        """Store the held outcome in a call of its own (kept held if the call fails)."""
        if self._outcome is not None:
            self._lane(plans.step(self._outcome, None))
            self._outcome = None

    def _store_outcome(self, stop: StopFlag) -> None:
        """Store the held outcome and ack; retried through Redis outages, since the run
        is done."""
        backoff = Backoff()
        while self._outcome is not None:
            try:
                self._send_outcome()
            except UNREACHABLE as exc:
                run_id = self._outcome_run
                if stop.is_set() and backoff.delay >= backoff.most:
                    log.error("gave up storing run %s: it stays pending and will run again", run_id)
                    self._outcome = None
                    return
                log.warning("cannot store run %s yet (%s)", run_id, exc)
                backoff.sleep()

    def _ack(self, stream: str, entry_id: str) -> None:
        pipe = self.broker.redis.pipeline(transaction=True)
        pipe.xack(stream, GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        pipe.execute()

    def _hand_back(self, entries: Sequence[StreamEntry]) -> None:
        """Return prefetched runs that never started to their streams, for other workers."""
        for entry in entries:
            pipe = self.broker.redis.pipeline(transaction=True)
            pipe.xadd(entry.stream, entry.fields)  # type: ignore[arg-type]
            pipe.xack(entry.stream, GROUP, entry.id)
            pipe.xdel(entry.stream, entry.id)
            pipe.execute()
        if entries:
            log.info("handed back %d prefetched runs", len(entries))


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / (1 << 20)


__all__ = ["Consumer", "SlotConfig", "all_streams", "ensure_groups", "partition_streams"]
