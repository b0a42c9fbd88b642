"""``PUT /tasks/{name}`` and ``DELETE /tasks/{name}``: tasks with an HTTP target, written
to the task catalog for ``--pool http`` workers (docs/http-executor.md).

A name some Python worker registered is refused (409): one name, one task.
"""

from __future__ import annotations

from typing import cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import intake
from gateway.responses import JSONResponse
from gateway.state import deps
from sdk.errors import InvalidRequest, TaskNotFound
from sdk.http_tasks import (
    HttpTaskSpec,
    catalog_entry,
    check_spec,
    is_python_task,
    python_task_conflict,
)
from sdk.protocol import JSON


async def _current(request: Request, name: str) -> bytes | None:
    """The task's catalog entry as stored; Conflict when it is a Python task's."""
    d = deps(request)
    raw = cast(bytes | None, await d.broker.redis.hget(d.broker.keys.tasks, name))
    if is_python_task(raw):
        raise python_task_conflict(name)
    return raw


async def put_task(request: Request) -> Response:
    d = deps(request)
    name: str = request.path_params["name"]
    intake.content_type(request.headers, (JSON,))
    try:
        spec = msgspec.json.decode(await request.body(), type=HttpTaskSpec)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidRequest(f"not an HTTP task: {exc}") from None
    check_spec(name, spec)
    existed = await _current(request, name) is not None
    entry = catalog_entry(name, spec, d.settings.default_queue)
    await d.broker.redis.hset(d.broker.keys.tasks, name, msgspec.json.encode(entry))
    d.catalog.invalidate()
    location = f"/tasks/{name}"
    return JSONResponse(entry, 200 if existed else 201, {"Location": location})


async def delete_task(request: Request) -> Response:
    d = deps(request)
    name: str = request.path_params["name"]
    if await _current(request, name) is None:
        raise TaskNotFound(f"no HTTP task named {name!r}")
    await d.broker.redis.hdel(d.broker.keys.tasks, name)
    d.catalog.invalidate()
    return Response(status_code=204)


__all__ = ["delete_task", "put_task"]
