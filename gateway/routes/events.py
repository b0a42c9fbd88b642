"""``GET /events``: Server-Sent Events of run and worker events (sse-starlette).

Each SSE event is one entry of a partition's events stream: ``event: run`` or ``event:
worker``, ``data:`` JSON, and ``id:`` the client's position in every partition's stream
(see ``Position``: with one partition, the stream entry id). A run event's data is the
run's JSON without its result payload (``result``, ``result_encoded`` removed), with
``state`` the state of that event. Live entries come from the process's one events tail
(gateway/waiters.py); a client sending ``Last-Event-ID`` first gets what it missed
(``XRANGE`` after its position in each stream, as far as the capped streams still hold
it, merged oldest first), then the live entries. Filters: ``?task=``, ``?run=`` (either
drops worker events), ``?kind=run|worker``. A client too slow to keep up is
disconnected; it reconnects with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.merge import Source, merge
from gateway.state import Deps, deps
from gateway.waiters import Entry, Event, StreamId, Subscriber, parse_stream_id, stream_id
from sdk.errors import InvalidRequest
from sdk.runs import run_json

PAGE = 500  # backlog entries read per XRANGE, and live entries sent per batch
KINDS = ("run", "worker")


@dataclass(frozen=True, slots=True)
class Filter:
    task: str | None = None
    run: str | None = None
    kind: str | None = None

    @classmethod
    def of(cls, request: Request) -> Filter:
        q = request.query_params
        unknown = sorted(set(q) - {"task", "run", "kind"})
        if unknown:
            raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}")
        kind = q.get("kind")
        if kind is not None and kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return cls(q.get("task"), q.get("run"), kind)

    def admits(self, fields: dict[bytes, bytes]) -> bool:
        kind = fields.get(b"kind", b"run").decode()
        if self.kind is not None and kind != self.kind:
            return False
        if kind != "run":
            return self.task is None and self.run is None
        if self.task is not None and fields.get(b"task", b"").decode() != self.task:
            return False
        return self.run is None or fields.get(b"id", b"").decode() == self.run


class Position:
    """Where a client is in each partition's events stream; as text, the SSE id of its
    last event: one ``ms-seq`` stream id per partition, comma-separated (with one
    partition, the plain stream entry id)."""

    def __init__(self, at: list[StreamId]) -> None:
        self.at = at

    @classmethod
    def parse(cls, text: str, partitions: int) -> Position:
        """A Last-Event-ID: one stream id per partition, or one for all of them."""
        ids = [parse_stream_id(part) for part in text.split(",")]
        if len(ids) not in (1, partitions):
            raise ValueError(f"{len(ids)} stream ids for {partitions} partitions")
        return cls(ids * partitions if len(ids) == 1 else ids)

    def advance(self, part: int, entry_id: bytes) -> bool:
        """Move past an entry; False when the client is past it already."""
        at = stream_id(entry_id)
        if at <= self.at[part]:
            return False
        self.at[part] = at
        return True

    def of(self, part: int) -> str:
        ms, seq = self.at[part]
        return f"{ms}-{seq}"

    def __str__(self) -> str:
        return ",".join(map(self.of, range(len(self.at))))


def _decoded(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in fields.items()}


def _admitted(entries: list[Event], at: Position, flt: Filter) -> list[tuple[Event, str]]:
    """The entries the client has not had and the filter lets through, each with the SSE
    id of the position just past it."""
    admitted = []
    for entry in entries:
        if at.advance(entry.part, entry.id) and flt.admits(entry.fields):
            admitted.append((entry, str(at)))
    return admitted


async def _events(d: Deps, entries: list[tuple[Event, str]]) -> list[ServerSentEvent]:
    """SSE events for stream entries, run events completed from their records."""
    runs = [e.fields[b"id"].decode() for e, _ in entries if e.fields.get(b"kind", b"run") == b"run"]
    pipe = d.redis.pipeline(transaction=False)
    for run_id in runs:
        pipe.hgetall(d.broker.keys.run(run_id))
    records = dict(zip(runs, cast(list[dict[bytes, bytes]], await pipe.execute()), strict=True))
    events = []
    for entry, sse_id in entries:
        data: dict[str, Any] = _decoded(entry.fields)
        kind = data.pop("kind", "run")
        if kind == "run" and records.get(data["id"]):
            view = run_json(data["id"], records[data["id"]], d.codec)
            view.pop("result", None)
            view.pop("result_encoded", None)
            data = {**view, "state": data.get("state")}
        events.append(ServerSentEvent(msgspec.json.encode(data).decode(), event=kind, id=sse_id))
    return events


@dataclass(slots=True)
class _Backlog:
    """One partition's events stream, read ``PAGE`` entries at a time after ``after``."""

    part: int
    after: str
    read: Source[Event] = field(default_factory=Source)


async def _fill(d: Deps, sources: list[_Backlog]) -> None:
    """Read on until every partition holds an entry or was read to its end."""
    while wanting := [s for s in sources if s.read.wanting]:
        pipe = d.redis.pipeline(transaction=False)
        for s in wanting:
            pipe.xrange(d.broker.keys.events(s.part), f"({s.after}", "+", count=PAGE)
        for s, page in zip(wanting, cast(list[list[Entry]], await pipe.execute()), strict=True):
            s.read.done = len(page) < PAGE
            if page:
                s.after = page[-1][0].decode()
            s.read.buffer.extend(Event(s.part, entry_id, fields) for entry_id, fields in page)


async def _backlog(d: Deps, at: Position, flt: Filter) -> AsyncIterator[ServerSentEvent]:
    """What the client missed (as far as the capped streams still hold it), oldest first
    across partitions."""
    sources = [_Backlog(part, at.of(part)) for part in d.broker.keys.all_partitions]
    while True:
        await _fill(d, sources)
        page = merge([s.read for s in sources], PAGE, key=lambda e: stream_id(e.id), newest=False)
        if not page:
            return
        for event in await _events(d, _admitted(page, at, flt)):
            yield event


async def _live(sub: Subscriber) -> list[Event]:
    """The next batch of live entries; empty once the subscriber lagged too far."""
    get = asyncio.ensure_future(sub.queue.get())
    lagged = asyncio.ensure_future(sub.lagged.wait())
    try:
        await asyncio.wait((get, lagged), return_when=asyncio.FIRST_COMPLETED)
    finally:
        lagged.cancel()
        if not get.done():
            get.cancel()
    if not get.done() or get.cancelled() or sub.lagged.is_set():
        return []
    batch = [get.result()]
    while len(batch) < PAGE and not sub.queue.empty():
        batch.append(sub.queue.get_nowait())
    return batch


async def _now(d: Deps) -> Position:
    """A new client's position: every stream's end. With one partition, nothing: its SSE
    ids are the entry ids alone."""
    keys = d.broker.keys
    if keys.partitions == 1:
        return Position([(0, 0)])
    pipe = d.redis.pipeline(transaction=False)
    for part in keys.all_partitions:
        pipe.xrevrange(keys.events(part), count=1)
    lasts = cast(list[list[Entry]], await pipe.execute())
    return Position([stream_id(last[0][0]) if last else (0, 0) for last in lasts])


async def _stream(d: Deps, flt: Filter, last: Position | None) -> AsyncIterator[ServerSentEvent]:
    with d.hub.subscribe() as sub:  # before the backlog, so nothing falls between the two
        if last is None:
            at = await _now(d)
        else:
            at = last
            async for event in _backlog(d, at, flt):
                yield event
        while batch := await _live(sub):
            for event in await _events(d, _admitted(batch, at, flt)):
                yield event


def _last_event_id(request: Request, partitions: int) -> Position | None:
    value = request.headers.get("last-event-id") or None
    if value is None:
        return None
    try:
        return Position.parse(value, partitions)
    except ValueError:
        raise InvalidRequest(f"Last-Event-ID is not an events stream position: {value!r}") from None


async def events(request: Request) -> Response:
    d = deps(request)
    flt = Filter.of(request)
    last = _last_event_id(request, d.broker.keys.partitions)
    return EventSourceResponse(
        _stream(d, flt, last),
        ping=d.settings.events_ping,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        send_timeout=30,
    )


routes = [Route("/events", events, methods=["GET"])]
