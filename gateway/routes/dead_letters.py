"""``/dead-letters``: runs that exhausted their deliveries, and putting them back."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import deps
from sdk.broker import Fields, check_requeue
from sdk.errors import InvalidRequest
from sdk.runs import run_json

MAX_LIMIT = 500


def _limit(raw: str | None) -> int:
    try:
        limit = int(raw or 50)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be 1 to {MAX_LIMIT}, not {raw!r}")
    return limit


async def list_dead_letters(request: Request) -> Response:
    """Newest first across queues (``?queue=`` narrows); ``next`` pages with ``?cursor=``."""
    d = deps(request)
    keys, client = d.broker.keys, d.redis
    limit = _limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    if queue := request.query_params.get("queue"):
        queues = [queue]
    else:
        members = cast(set[bytes], await client.smembers(keys.queues))
        queues = sorted(q.decode() for q in members)
    top = f"({cursor}" if cursor else "+"
    pipe = client.pipeline(transaction=False)
    for name in queues:
        pipe.xrevrange(keys.dead(name), max=top, min="-", count=limit + 1)
    letters = sorted(
        (
            (entry_id, fields[b"id"].decode())
            for reply in await pipe.execute()
            for entry_id, fields in reply
        ),
        key=lambda item: tuple(int(x) for x in item[0].split(b"-")),
        reverse=True,
    )
    page, more = letters[:limit], len(letters) > limit
    pipe = client.pipeline(transaction=False)
    for _, run_id in page:
        pipe.hgetall(keys.run(run_id))
    records: list[Fields] = await pipe.execute()
    items = [
        run_json(run_id, fields, d.codec)
        for (_, run_id), fields in zip(page, records, strict=True)
        if fields
    ]
    next_cursor = page[-1][0].decode() if more and page else None
    return JSONResponse({"items": items, "next": next_cursor})


async def requeue_dead_letter(request: Request) -> Response:
    """Back on its queue as a fresh round of deliveries (202); not dead: 409; unknown: 404."""
    d = deps(request)
    run_id: str = request.path_params["id"]
    outcome, state = await d.broker.requeue(run_id)
    check_requeue(run_id, outcome, state)
    return JSONResponse(
        {"id": run_id, "state": "PENDING", "links": {"self": f"/runs/{run_id}"}}, status_code=202
    )


routes = [
    Route("/dead-letters", list_dead_letters, methods=["GET"]),
    Route("/dead-letters/{id}/requeue", requeue_dead_letter, methods=["POST"]),
]
