"""``/schedules``: periodic and one-off runs, changed at runtime (docs/scheduling.md)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.intake import content_type
from gateway.responses import JSONResponse
from gateway.scheduler import Admin
from gateway.state import deps
from sdk.errors import InvalidRequest
from sdk.serializers import JSON


def _admin(request: Request) -> Admin:
    admin: Admin = deps(request).schedules
    return admin


async def _json(request: Request, empty_ok: bool = False) -> Any:
    """The body as JSON (400 if it is not JSON); its shape is the admin's to judge (422)."""
    content_type(request.headers, (JSON,))
    raw = await request.body()
    if empty_ok and not raw.strip():
        return {}
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON body: {exc}") from None


def _id(request: Request) -> str:
    found: str = request.path_params["id"]
    return found


async def collection(request: Request) -> Response:
    if request.method == "GET":
        return JSONResponse({"items": await _admin(request).list(), "next": None})
    created = await _admin(request).create(await _json(request))
    return JSONResponse(created, 201, {"Location": created["links"]["self"]})


async def item(request: Request) -> Response:
    admin = _admin(request)
    if request.method == "GET":
        return JSONResponse(await admin.get(_id(request)))
    if request.method == "PATCH":
        return JSONResponse(await admin.patch(_id(request), await _json(request)))
    await admin.delete(_id(request))
    return Response(status_code=204)


async def pause(request: Request) -> Response:
    return JSONResponse(await _admin(request).set_enabled(_id(request), False))


async def resume(request: Request) -> Response:
    return JSONResponse(await _admin(request).set_enabled(_id(request), True))


async def run(request: Request) -> Response:
    accepted = await _admin(request).run_now(_id(request))
    return JSONResponse(accepted, 202, {"Location": accepted["links"]["self"]})


routes = [
    Route("/schedules", collection, methods=["GET", "POST"]),
    Route("/schedules/{id}", item, methods=["GET", "PATCH", "DELETE"]),
    Route("/schedules/{id}/pause", pause, methods=["POST"]),
    Route("/schedules/{id}/resume", resume, methods=["POST"]),
    Route("/schedules/{id}/run", run, methods=["POST"]),
]
