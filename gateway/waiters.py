"""Long-poll wake-ups: one events tail per process resolves every waiter's future.

A waiter registers its future *before* reading the run record, so a run that finishes
between the read and the wait still wakes it. Thousands of waiters cost one XREAD loop,
over every partition's events stream at once. On a Redis Cluster one command may not
touch keys of two slots, so there the tail is one XREAD loop per partition, all at once,
each through the cluster client (which follows slot moves). The same tail feeds
``/events`` subscribers (SSE): each gets every entry, with its partition, in a bounded
queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple, cast

import redis.asyncio as aredis
import redis.exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from sdk import states
from sdk.clients import AsyncClient
from sdk.protocol.keys import Keys
from sdk.protocol.record import Fields, is_terminal

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]  # a stream entry: id, fields
# As the server sends it: id, [name, value, ...] (on a Cluster as redis-py parses it: a dict)
RawEntry = tuple[bytes, list[bytes] | dict[bytes, bytes]]
_TERMINAL = {s.encode() for s in states.TERMINAL}
BLOCK_MS = 5_000  # below the client's socket timeout
BATCH = 1_000
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
SUBSCRIBER_QUEUE = 10_000  # entries a slow SSE client may lag behind before it is cut off


StreamId = tuple[int, int]  # a stream entry id (ms, seq), comparable


def stream_id(entry_id: bytes | str) -> StreamId:
    """A stream entry id (``ms-seq``) as a comparable pair."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


_STREAM_ID = re.compile(r"\d+(-\d+)?")


def parse_stream_id(text: str) -> StreamId:
    """A stream entry id a client sent (``ms-seq``, or ``ms``); ValueError if it is not one."""
    if not _STREAM_ID.fullmatch(text):
        raise ValueError(f"not a stream entry id: {text!r}")
    return stream_id(text)


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _entries_by_stream(reply: Any) -> list[tuple[bytes, list[RawEntry]]]:
    """XREAD's reply: a map of stream to entries (RESP3) or a list of pairs (RESP2)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(stream, cast(list[RawEntry], entries)) for stream, entries in pairs if entries]


def _pairs(flat: list[bytes] | dict[bytes, bytes] | None) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}


class Event(NamedTuple):
    """An entry of a partition's events stream."""

    part: int
    id: bytes
    fields: dict[bytes, bytes]


class Subscriber:
    """One ``/events`` client: the entries the tail saw since it subscribed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.lagged = asyncio.Event()  # set once the queue overflowed: the client must resume

    def offer(self, entry: Event) -> None:
        if self.lagged.is_set():
            return
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.lagged.set()


class WaitHub:
    def __init__(self, client: AsyncClient, keys: Keys) -> None:
        self._redis: AsyncClient = client
        self._streams = [keys.events(part) for part in keys.all_partitions]
        # What each XREAD reads: every stream on one server, one stream on a Cluster.
        self._reads = [[name] for name in self._streams]
        if not isinstance(client, RedisCluster):
            # The tail reads every event the system writes (one per submission, start and
            # finish), so it takes XREAD's reply as parsed by hiredis, without redis-py's
            # per-entry dict building, and builds dicts only for SSE subscribers.
            self._redis = aredis.Redis(connection_pool=client.connection_pool)
            self._redis.set_response_callback("XREAD", _raw)
            self._reads = [self._streams]
        self._parts = {name.encode(): part for part, name in enumerate(self._streams)}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._delay = BACKOFF_MIN
        self._subscribers: set[Subscriber] = set()
        self._last: dict[
            str, bytes
        ] = {}  # each stream's last entry seen, to resume after an outage

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._tail(), name="celeriac-waithub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._wake_all()

    # -- waiters -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _watch(self, run_id: str) -> Iterator[asyncio.Future[None]]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, set()).add(future)
        try:
            yield future
        finally:
            waiting = self._waiters.get(run_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[run_id]

    async def wait(
        self,
        run_id: str,
        read: Callable[[], Awaitable[Fields | None]],
        timeout: float,
        absent_ok: bool = False,
    ) -> Fields | None:
        """``read()``'s record once terminal, or as it is when ``timeout`` runs out. A run
        with no record answers None at once, unless ``absent_ok`` (a workflow's member
        not submitted yet): then its submission's event wakes the wait too."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._watch(run_id) as woken:
                fields = await read()
                remaining = deadline - loop.time()
                if remaining <= 0 or (fields is None and not absent_ok):
                    return fields
                if fields is not None and is_terminal(fields):
                    return fields
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken, remaining)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        """Every entry the tail sees while the block runs (``/events``)."""
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def _wake(self, run_id: str) -> None:
        for future in self._waiters.get(run_id, ()):
            if not future.done():
                future.set_result(None)

    def _wake_all(self) -> None:
        for run_id in list(self._waiters):
            self._wake(run_id)

    # -- the tail ----------------------------------------------------------------------------
    async def _ends(self) -> dict[str, bytes]:
        """Where to read each stream from: its end, or the last entry seen before an
        outage if the stream still reaches back to it."""
        pipe = self._redis.pipeline(transaction=False)
        for name in self._streams:
            pipe.xrevrange(name, count=1)
        lasts = cast(list[list[Entry]], await pipe.execute())
        ends = {}
        for name, last in zip(self._streams, lasts, strict=True):
            end = last[0][0] if last else b"0-0"
            seen = self._last.get(name)
            ends[name] = seen if seen and stream_id(seen) <= stream_id(end) else end
        return ends

    async def _follow(self) -> None:
        """Tail the streams from their current ends; returns only by raising."""
        last = await self._ends()
        self._delay = BACKOFF_MIN
        self._wake_all()  # anything may have finished while we were not listening
        if len(self._reads) == 1:
            await self._read(self._reads[0], last)
            return
        reads = [asyncio.create_task(self._read(names, last)) for names in self._reads]
        try:
            done, _ = await asyncio.wait(reads, return_when=asyncio.FIRST_EXCEPTION)
            for read in done:
                read.result()  # raises the first failure (the reads never return)
        finally:
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)

    async def _read(self, names: list[str], last: dict[str, bytes]) -> None:
        """Follow the streams ``names`` with one blocking XREAD after another."""
        while True:
            after = {name: last[name] for name in names}
            reply = await self._redis.xread(after, count=BATCH, block=BLOCK_MS)  # type: ignore[arg-type]
            for stream, entries in _entries_by_stream(reply):
                part = self._parts[stream]
                name = self._streams[part]
                last[name] = self._last[name] = entries[-1][0]
                if self._waiters:
                    for _id, flat in entries:
                        self._wake_if_terminal(flat)
                if self._subscribers:  # after the wake-ups: long-polls first
                    self._offer(part, entries)

    def _offer(self, part: int, entries: list[RawEntry]) -> None:
        parsed = [Event(part, entry_id, _pairs(flat)) for entry_id, flat in entries]
        for subscriber in self._subscribers:
            for entry in parsed:
                subscriber.offer(entry)

    def _wake_if_terminal(self, flat: list[bytes] | dict[bytes, bytes]) -> None:
        fields = _pairs(flat)
        if fields.get(b"state") in _TERMINAL:
            self._wake(fields.get(b"id", b"").decode())

    async def _tail(self) -> None:
        """Follow the streams forever, backing off while Redis is unreachable."""
        while True:
            try:
                await self._follow()
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                if self._delay == BACKOFF_MIN:  # once per outage
                    log.warning("events stream unreachable, retrying: %s", exc)
            except Exception:  # the loop must outlive any surprise; log it and go on
                log.exception("events tail failed; restarting")
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, BACKOFF_MAX)
