"""``/healthz`` (the process answers) and ``/readyz`` (and Redis answers too)."""

from __future__ import annotations

import asyncio

from redis.exceptions import ResponseError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import deps
from sdk.errors import BrokerUnavailable
from sdk.hygiene import eviction_warning

PING_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when Redis answers; warnings name Redis settings that put runs at risk."""
    client = deps(request).redis
    try:
        await asyncio.wait_for(client.ping(), PING_TIMEOUT)
    except TimeoutError:
        raise BrokerUnavailable("Redis did not answer PING in time") from None
    try:
        warning = eviction_warning(await client.config_get("maxmemory*"))
    except ResponseError:  # CONFIG is disabled on some managed services
        warning = None
    return JSONResponse({"status": "ok", "warnings": [warning] if warning else []})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
