"""``GET /events``: Server-Sent Events of run and worker events (sse-starlette).

Each SSE event is one entry of the events stream: ``event: run`` or ``event: worker``,
``id:`` the stream entry id, ``data:`` JSON. A run event's data is the run's JSON without
its result payload (``result``, ``result_encoded`` removed), with ``state`` the state of
that event. Live entries come from the process's one events tail (gateway/waiters.py); a
client sending ``Last-Event-ID`` first gets what it missed (``XRANGE`` after that id, as far
as the capped stream still holds it), then the live entries. Filters: ``?task=``,
``?run=`` (either drops worker events), ``?kind=run|worker``. A client too slow to keep up
is disconnected; it reconnects with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.state import Deps, deps
from gateway.waiters import Entry, Subscriber, stream_id
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


def _decoded(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in fields.items()}


async def _events(d: Deps, entries: list[Entry]) -> list[ServerSentEvent]:
    """SSE events for stream entries, run events completed from their records."""
    runs = [f[b"id"].decode() for _e, f in entries if f.get(b"kind", b"run") == b"run"]
    pipe = d.redis.pipeline(transaction=False)
    for run_id in runs:
        pipe.hgetall(d.broker.keys.run(run_id))
    records = dict(zip(runs, cast(list[dict[bytes, bytes]], await pipe.execute()), strict=True))
    events = []
    for entry_id, fields in entries:
        data: dict[str, Any] = _decoded(fields)
        kind = data.pop("kind", "run")
        if kind == "run" and records.get(data["id"]):
            view = run_json(data["id"], records[data["id"]], d.codec)
            view.pop("result", None)
            view.pop("result_encoded", None)
            data = {**view, "state": data.get("state")}
        events.append(
            ServerSentEvent(msgspec.json.encode(data).decode(), event=kind, id=entry_id.decode())
        )
    return events


async def _backlog(
    d: Deps, after: str, flt: Filter
) -> AsyncIterator[tuple[bytes, ServerSentEvent]]:
    start = f"({after}"
    while True:
        page = cast(list[Entry], await d.redis.xrange(d.broker.keys.events, start, "+", count=PAGE))
        admitted = [e for e in page if flt.admits(e[1])]
        for (entry_id, _f), event in zip(admitted, await _events(d, admitted), strict=True):
            yield entry_id, event
        if len(page) < PAGE:
            return
        start = f"({page[-1][0].decode()}"


async def _live(sub: Subscriber) -> list[Entry]:
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


async def _stream(d: Deps, flt: Filter, last_id: str | None) -> AsyncIterator[ServerSentEvent]:
    with d.hub.subscribe() as sub:  # before the backlog, so nothing falls between the two
        sent = stream_id(last_id) if last_id else (0, 0)
        if last_id:
            async for entry_id, event in _backlog(d, last_id, flt):
                sent = stream_id(entry_id)
                yield event
        while batch := await _live(sub):
            fresh = [e for e in batch if stream_id(e[0]) > sent and flt.admits(e[1])]
            for event in await _events(d, fresh):
                yield event
            sent = max(sent, stream_id(batch[-1][0]))


def _last_event_id(request: Request) -> str | None:
    value = request.headers.get("last-event-id") or None
    if value is not None:
        try:
            stream_id(value)
        except ValueError:
            raise InvalidRequest(f"Last-Event-ID is not an events stream id: {value!r}") from None
    return value


async def events(request: Request) -> Response:
    d = deps(request)
    flt = Filter.of(request)
    last_id = _last_event_id(request)
    return EventSourceResponse(
        _stream(d, flt, last_id),
        ping=d.settings.events_ping,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        send_timeout=30,
    )


routes = [Route("/events", events, methods=["GET"])]
