"""``/runs/{id}``: a run's record, optionally long-polled until it is terminal."""

from __future__ import annotations

import math
from functools import partial

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import deps
from sdk.broker import check_revoke
from sdk.errors import InvalidRequest, RunNotFound
from sdk.runs import run_json

MAX_WAIT = 60.0


def parse_wait(value: str | None) -> float:
    """``?wait=N``: seconds to long-poll, 0 to 60 (fractions allowed)."""
    if value is None:
        return 0.0
    try:
        wait = float(value)
    except ValueError:
        wait = math.nan
    if not 0 <= wait <= MAX_WAIT:  # also refuses NaN
        raise InvalidRequest(
            f"wait must be a number of seconds from 0 to {MAX_WAIT:g}, not {value!r}",
            details={"max": MAX_WAIT},
        )
    return wait


async def get_run(request: Request) -> Response:
    d = deps(request)
    run_id: str = request.path_params["id"]
    wait = parse_wait(request.query_params.get("wait"))
    read = partial(d.broker.record, run_id)
    fields = await (d.hub.wait(run_id, read, wait) if wait > 0 else read())
    if fields is None:
        raise RunNotFound(f"no run with id {run_id!r}", details={"id": run_id})
    return JSONResponse(run_json(run_id, fields, d.codec))


class RevokeBody(msgspec.Struct, forbid_unknown_fields=True):
    terminate: bool = False


async def revoke_run(request: Request) -> Response:
    """A queued run never starts; with ``terminate`` a running one is stopped (202).
    Unknown run: 404; a run already finished: 409."""
    d = deps(request)
    run_id: str = request.path_params["id"]
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw, type=RevokeBody) if raw.strip() else RevokeBody()
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed revoke body: {exc}") from exc
    verdict = await d.broker.revoke(run_id, body.terminate)
    check_revoke(run_id, verdict)
    return JSONResponse(
        {
            "id": run_id,
            "revoked": True,
            "terminate": body.terminate,
            "outcome": verdict.outcome.lower(),
        },
        status_code=202,
    )


routes = [
    Route("/runs/{id}", get_run, methods=["GET"]),
    Route("/runs/{id}/revoke", revoke_run, methods=["POST"]),
]
