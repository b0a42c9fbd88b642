"""Long-poll wake-ups: one events-stream tail per process resolves every waiter's future.

A waiter registers its future *before* reading the run record, so a run that finishes
between the read and the wait still wakes it. Thousands of waiters cost one XREAD loop.
The same tail feeds ``/events`` subscribers (SSE): each gets every entry in a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import redis.asyncio as aredis
import redis.exceptions as redis_errors

from sdk import states
from sdk.broker import Fields, is_terminal
from sdk.keys import Keys

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]  # a stream entry: id, fields
RawEntry = tuple[bytes, list[bytes]]  # as the server sends it: id, [name, value, ...]
_TERMINAL = {s.encode() for s in states.TERMINAL}
BLOCK_MS = 5_000  # below the client's socket timeout
BATCH = 1_000
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
SUBSCRIBER_QUEUE = 10_000  # entries a slow SSE client may lag behind before it is cut off


def stream_id(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a comparable pair."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _entries_by_stream(reply: Any) -> list[list[RawEntry]]:
    """XREAD's reply: a map of stream to entries (RESP3) or a list of pairs (RESP2)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [cast(list[RawEntry], entries) for _stream, entries in pairs if entries]


def _pairs(flat: list[bytes] | None) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}


class Subscriber:
    """One ``/events`` client: the entries the tail saw since it subscribed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Entry] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.lagged = asyncio.Event()  # set once the queue overflowed: the client must resume

    def offer(self, entry: Entry) -> None:
        if self.lagged.is_set():
            return
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.lagged.set()


class WaitHub:
    def __init__(self, client: aredis.Redis, keys: Keys) -> None:
        # The tail reads every event the system writes (one per submission, start and
        # finish), so it takes XREAD's reply as parsed by hiredis, without redis-py's
        # per-entry dict building, and builds dicts only for SSE subscribers.
        self._redis = aredis.Redis(connection_pool=client.connection_pool)
        self._redis.set_response_callback("XREAD", _raw)
        self._stream = keys.events
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._delay = BACKOFF_MIN
        self._subscribers: set[Subscriber] = set()
        self._last: bytes | None = None  # the last entry seen, to resume after an outage

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
        self, run_id: str, read: Callable[[], Awaitable[Fields | None]], timeout: float
    ) -> Fields | None:
        """``read()``'s record once terminal, or as it is when ``timeout`` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._watch(run_id) as woken:
                fields = await read()
                remaining = deadline - loop.time()
                if fields is None or is_terminal(fields) or remaining <= 0:
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
    async def _last_id(self) -> bytes:
        last = cast(list[Entry], await self._redis.xrevrange(self._stream, count=1))
        return last[0][0] if last else b"0-0"

    async def _follow(self) -> None:
        """Tail the stream from its current end; returns only by raising."""
        end = await self._last_id()
        last = self._last if self._last and stream_id(self._last) <= stream_id(end) else end
        self._delay = BACKOFF_MIN
        self._wake_all()  # anything may have finished while we were not listening
        while True:
            reply = await self._redis.xread({self._stream: last}, count=BATCH, block=BLOCK_MS)
            for entries in _entries_by_stream(reply):
                last = self._last = entries[-1][0]
                if self._waiters:
                    for _id, flat in entries:
                        self._wake_if_terminal(flat)
                if self._subscribers:  # after the wake-ups: long-polls first
                    parsed = [(entry_id, _pairs(flat)) for entry_id, flat in entries]
                    for subscriber in self._subscribers:
                        for entry in parsed:
                            subscriber.offer(entry)

    def _wake_if_terminal(self, flat: list[bytes]) -> None:
        fields = _pairs(flat)
        if fields.get(b"state") in _TERMINAL:
            self._wake(fields.get(b"id", b"").decode())

    async def _tail(self) -> None:
        """Follow the stream forever, backing off while Redis is unreachable."""
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
