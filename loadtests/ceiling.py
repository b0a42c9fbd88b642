"""The ceiling for the gateway's POST rate: a bare Starlette app on the same server stack.

``POST /tasks/noop`` reads and decodes the JSON body and answers 202 with a fresh id;
``POST /tasks/xadd`` also appends the body to one stream (one XADD, one round trip),
the least a durable submission can do. Served like the gateway (uvicorn, uvloop,
httptools, one process), so the gateway's figure reads as a fraction of this one:

    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 python -m uvicorn loadtests.ceiling:create_app \
        --factory --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sdk.clients import AsyncClient, async_client

STREAM = "bench:ceiling"


def _accepted(name: str) -> Response:
    run_id = str(uuid.uuid4())
    body = {"id": run_id, "task": name, "state": "PENDING", "links": {"self": f"/runs/{run_id}"}}
    return Response(msgspec.json.encode(body), 202, media_type="application/json")


async def noop(request: Request) -> Response:
    msgspec.json.decode(await request.body())
    return _accepted("noop")


async def xadd(request: Request) -> Response:
    raw = await request.body()
    msgspec.json.decode(raw)
    await request.state.redis.xadd(STREAM, {"body": raw})
    return _accepted("xadd")


def create_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AsyncClient]]:
        client = async_client(os.environ["BENCH_REDIS_URL"])
        yield {"redis": client}
        await client.aclose()

    routes = [
        Route("/tasks/noop", noop, methods=["POST"]),
        Route("/tasks/xadd", xadd, methods=["POST"]),
        Route("/healthz", lambda _: Response("ok"), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
