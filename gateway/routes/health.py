"""``/healthz`` (the process answers) and ``/readyz`` (and Redis answers too)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import deps
from sdk.errors import BrokerUnavailable

PING_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await asyncio.wait_for(deps(request).redis.ping(), PING_TIMEOUT)
    except TimeoutError:
        raise BrokerUnavailable("Redis did not answer PING in time") from None
    return JSONResponse({"status": "ok"})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
