"""``GET /runs``: recent runs, newest first, over the bounded history zset.

The history is ``<prefix>:runs`` (run id scored by creation time, trimmed to the newest
``history_size``, 10,000 by default). Filters ``task``, ``state`` (one state or a
comma-separated list) and ``queue`` are applied to the records as they are read, so one
page reads at most ``MAX_SCAN`` history entries: a page may hold fewer than ``limit``
items and still have a ``next`` cursor. Follow ``next`` until it is null. Runs whose
record has expired are skipped. The cursor is opaque (the creation time and id of the last
entry looked at); pages do not shift when new runs arrive.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import Deps, deps
from sdk.errors import InvalidRequest
from sdk.runs import Fields, run_json

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


async def _chunk(d: Deps, query: Query, offset: int) -> tuple[int, list[Position]]:
    """How many history entries were read at ``offset``, and those after the cursor."""
    top: Any = "+inf" if query.after is None else query.after[0]
    raw = await d.redis.zrevrangebyscore(
        d.broker.keys.runs, top, "-inf", start=offset, num=CHUNK, withscores=True
    )
    found = [(int(score), member.decode()) for member, score in cast(list[Any], raw)]
    if query.after is not None:  # same creation ms: ids below the cursor's come after it
        after_score, after_id = query.after
        found = [(s, m) for s, m in found if s < after_score or m < after_id]
    return len(raw), found


async def _records(d: Deps, positions: list[Position]) -> list[Fields]:
    pipe = d.redis.pipeline(transaction=False)
    for _score, run_id in positions:
        pipe.hgetall(d.broker.keys.run(run_id))
    return cast(list[Fields], await pipe.execute())


async def page(d: Deps, query: Query) -> tuple[list[dict[str, Any]], str | None]:
    """One page of runs, and the cursor of the next (None at the end of the history)."""
    items: list[dict[str, Any]] = []
    offset = scanned = 0
    while True:
        read, positions = await _chunk(d, query, offset)
        offset += read
        for pos, fields in zip(positions, await _records(d, positions), strict=True):
            scanned += 1
            if fields and query.admits(fields):
                items.append(run_json(pos[1], fields, d.codec))
            if len(items) == query.limit or scanned >= MAX_SCAN:
                return items, encode_cursor(pos)
        if read < CHUNK:
            return items, None


async def list_runs(request: Request) -> Response:
    d = deps(request)
    items, cursor = await page(d, parse_query(request))
    return JSONResponse({"items": items, "next": cursor})


routes = [Route("/runs", list_runs, methods=["GET"])]
