"""``GET /runs``: recent runs, newest first, over the bounded history zset.

The history is one zset per partition (``Keys.history``: run id scored by creation time,
each trimmed to the newest ``history_size``, 10,000 by default), merged here newest first
(ties by id, descending). Filters ``task``, ``state`` (one state or a
comma-separated list) and ``queue`` are applied to the records as they are read, so one
page reads at most ``MAX_SCAN`` history entries: a page may hold fewer than ``limit``
items and still have a ``next`` cursor. Follow ``next`` until it is null. Runs whose
record has expired are skipped. The cursor is opaque (the creation time and id of the last
entry looked at); pages do not shift when new runs arrive.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.merge import Source, merge
from gateway.responses import JSONResponse
from gateway.state import Deps, deps
from sdk.errors import InvalidRequest
from sdk.protocol.record import Fields
from sdk.runs import run_json

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
CHUNK = 200
MAX_SCAN = 2_000
PARAMS = ("task", "state", "queue", "limit", "cursor")

Position = tuple[int, str]  # created ms, run id


@dataclass(frozen=True, slots=True)
class Query:
    task: str | None
    states: frozenset[str] | None
    queue: str | None
    limit: int
    after: Position | None

    def admits(self, fields: Fields) -> bool:
        def value(name: str) -> str:
            return fields.get(name.encode(), b"").decode()

        return (
            (self.task is None or value("task") == self.task)
            and (self.queue is None or value("queue") == self.queue)
            and (self.states is None or value("state") in self.states)
        )


def encode_cursor(pos: Position) -> str:
    return base64.urlsafe_b64encode(f"{pos[0]}:{pos[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, _, run_id = raw.partition(":")
        return int(score), run_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(f"invalid cursor {cursor!r}") from None


def parse_query(request: Request) -> Query:
    q = request.query_params
    unknown = sorted(set(q) - set(PARAMS))
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be 1-{MAX_LIMIT}", details={"max": MAX_LIMIT})
    states = frozenset(s.strip().upper() for s in q["state"].split(",")) if "state" in q else None
    cursor = q.get("cursor")
    return Query(
        q.get("task"), states, q.get("queue"), limit, decode_cursor(cursor) if cursor else None
    )


@dataclass(slots=True)
class _History:
    """One partition's history, read ``CHUNK`` entries at a time below the cursor."""

    key: str
    offset: int = 0  # entries read so far (at or below the cursor's score)
    read: Source[Position] = field(default_factory=Source)

    def take(self, raw: list[Any], after: Position | None) -> None:
        self.offset += len(raw)
        self.read.done = len(raw) < CHUNK
        found = [(int(score), member.decode()) for member, score in raw]
        if after is not None:  # same creation ms: ids below the cursor's come after it
            found = [(s, m) for s, m in found if s < after[0] or m < after[1]]
        self.read.buffer.extend(found)


async def _fill(d: Deps, query: Query, sources: list[_History]) -> None:
    """Read on until every source holds an entry or was read to its end."""
    top: Any = "+inf" if query.after is None else query.after[0]
    while wanting := [s for s in sources if s.read.wanting]:
        pipe = d.redis.pipeline(transaction=False)
        for s in wanting:
            pipe.zrevrangebyscore(s.key, top, "-inf", start=s.offset, num=CHUNK, withscores=True)
        for s, raw in zip(wanting, await pipe.execute(), strict=True):
            s.take(raw, query.after)


async def _records(d: Deps, positions: list[Position]) -> list[Fields]:
    pipe = d.redis.pipeline(transaction=False)
    for _score, run_id in positions:
        pipe.hgetall(d.broker.keys.run(run_id))
    return cast(list[Fields], await pipe.execute())


async def page(d: Deps, query: Query) -> tuple[list[dict[str, Any]], str | None]:
    """One page of runs, and the cursor of the next (None at the end of the history)."""
    keys = d.broker.keys
    sources = [_History(keys.history(part)) for part in keys.all_partitions]
    items: list[dict[str, Any]] = []
    scanned = 0
    while True:
        await _fill(d, query, sources)
        # positions compare as (created ms, id): newest first is the largest first
        positions = merge([s.read for s in sources], CHUNK, key=lambda pos: pos, newest=True)
        if not positions:
            return items, None
        for pos, fields in zip(positions, await _records(d, positions), strict=True):
            scanned += 1
            if fields and query.admits(fields):
                items.append(run_json(pos[1], fields, d.codec))
            if len(items) == query.limit or scanned >= MAX_SCAN:
                return items, encode_cursor(pos)


async def list_runs(request: Request) -> Response:
    d = deps(request)
    items, cursor = await page(d, parse_query(request))
    return JSONResponse({"items": items, "next": cursor})


routes = [Route("/runs", list_runs, methods=["GET"])]
