"""``/dead-letters``: runs that exhausted their deliveries, and putting them back.

Letters are listed newest first across every queue's dead-letter stream of every
partition: by entry id, then run id, as two streams may hold one entry id. The cursor is
the last letter's ``<entry id>:<run id>``.
"""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import Deps, deps
from gateway.waiters import StreamId, parse_stream_id, stream_id
from sdk.broker import check_requeue
from sdk.errors import InvalidRequest
from sdk.protocol.record import Fields
from sdk.runs import run_json

MAX_LIMIT = 500

Letter = tuple[StreamId, str]  # the dead-letter entry's id, the run's id


def _limit(raw: str | None) -> int:
    try:
        limit = int(raw or 50)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be 1 to {MAX_LIMIT}, not {raw!r}")
    return limit


async def _dead_streams(d: Deps, queue: str | None) -> list[str]:
    """The dead-letter streams to read: the queue's in every partition, or those of
    every queue a partition's runs were sent to."""
    keys = d.broker.keys
    if queue:
        return [keys.dead(part, queue) for part in keys.all_partitions]
    pipe = d.redis.pipeline(transaction=False)
    for part in keys.all_partitions:
        pipe.smembers(keys.queues(part))
    members = cast(list[set[bytes]], await pipe.execute())
    return [
        keys.dead(part, name.decode())
        for part, names in zip(keys.all_partitions, members, strict=True)
        for name in sorted(names)
    ]


def _cursor(raw: str | None) -> Letter | None:
    """The letter a page starts after (an entry id alone: after every letter of that id)."""
    if not raw:
        return None
    entry_id, _, run_id = raw.partition(":")
    try:
        return parse_stream_id(entry_id), run_id
    except ValueError:
        raise InvalidRequest(f"invalid cursor {raw!r}") from None


async def _letters(d: Deps, streams: list[str], after: Letter | None, count: int) -> list[Letter]:
    """Up to ``count`` letters of each stream after the cursor, newest first."""
    top = "+" if after is None else "{}-{}".format(*after[0])
    pipe = d.redis.pipeline(transaction=False)
    for stream in streams:  # one more: a stream may hold the cursor's own entry
        pipe.xrevrange(stream, max=top, min="-", count=count + 1)
    letters = [
        (stream_id(entry_id), fields[b"id"].decode())
        for reply in await pipe.execute()
        for entry_id, fields in reply
    ]
    return sorted((x for x in letters if after is None or x < after), reverse=True)


async def list_dead_letters(request: Request) -> Response:
    """Newest first across queues (``?queue=`` narrows); ``next`` pages with ``?cursor=``."""
    d = deps(request)
    limit = _limit(request.query_params.get("limit"))
    after = _cursor(request.query_params.get("cursor"))
    streams = await _dead_streams(d, request.query_params.get("queue"))
    letters = await _letters(d, streams, after, limit + 1)
    page, more = letters[:limit], len(letters) > limit
    pipe = d.redis.pipeline(transaction=False)
    for _, run_id in page:
        pipe.hgetall(d.broker.keys.run(run_id))
    records: list[Fields] = await pipe.execute()
    items = [
        run_json(run_id, fields, d.codec)
        for (_, run_id), fields in zip(page, records, strict=True)
        if fields
    ]
    next_cursor = "{}-{}:{}".format(*page[-1][0], page[-1][1]) if more and page else None
    return JSONResponse({"items": items, "next": next_cursor})


async def requeue_dead_letter(request: Request) -> Response:
    """Back on its queue as a fresh round of deliveries (202); not dead: 409; unknown: 404."""
    d = deps(request)
    run_id: str = request.path_params["id"]
    check_requeue(run_id, await d.broker.requeue(run_id))
    return JSONResponse(
        {"id": run_id, "state": "PENDING", "links": {"self": f"/runs/{run_id}"}}, status_code=202
    )


routes = [
    Route("/dead-letters", list_dead_letters, methods=["GET"]),
    Route("/dead-letters/{id}/requeue", requeue_dead_letter, methods=["POST"]),
]
