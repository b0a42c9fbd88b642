"""``/runs/{id}``: a run's record, optionally long-polled until it is terminal."""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.responses import JSONResponse
from gateway.state import Deps, deps
from sdk import states
from sdk.broker import Workflow, check_revoke
from sdk.errors import Conflict, InvalidRequest, RunNotFound
from sdk.protocol import decode_envelope, new_id, now_ms
from sdk.protocol.plans import Submission
from sdk.runs import RunJSON, run_json

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


async def _run(d: Deps, run_id: str, wait: float, absent_ok: bool = False) -> RunJSON | None:
    read = partial(d.broker.record, run_id)
    fields = await (d.hub.wait(run_id, read, wait, absent_ok) if wait > 0 else read())
    return None if fields is None else run_json(run_id, fields, d.codec)


async def get_run(request: Request) -> Response:
    d = deps(request)
    run_id: str = request.path_params["id"]
    wait = parse_wait(request.query_params.get("wait"))
    run = await _run(d, run_id, wait)
    if run is None and (workflow := await d.broker.workflow(run_id)) is not None:
        return JSONResponse(await _workflow(d, workflow, wait))
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r}", details={"id": run_id})
    return JSONResponse(run)


async def _workflow(d: Deps, workflow: Workflow, wait: float) -> dict[str, Any]:
    """A workflow as a run: a chain's or a chord's state and result are its result
    run's; a group's state is SUCCESS once every member succeeded, FAILURE once one
    ended otherwise, and its result the list of theirs (docs/canvas.md)."""
    deadline = time.monotonic() + wait
    view: dict[str, Any] = {"id": workflow.id, "kind": workflow.kind, "members": workflow.members}
    if workflow.result is not None:
        run = await _run(d, workflow.result, wait, absent_ok=True)
        state = run["state"] if run else states.PENDING
        result = run.get("result") if run else None
        return {**view, "result_id": workflow.result, "state": state, "result": result,
                "error": run.get("error") if run else None}  # fmt: skip
    runs = []
    for member in workflow.members:
        runs.append(await _run(d, member, max(0.0, deadline - time.monotonic()), True))
    found = [r["state"] if r else states.PENDING for r in runs]
    failed = next((r for r in runs if r and r["state"] in _ENDED_BADLY), None)
    if failed is not None:
        state = states.FAILURE
    elif all(s == states.SUCCESS for s in found):
        state = states.SUCCESS
    else:
        state = states.STARTED if states.STARTED in found else states.PENDING
    result = [r["result"] for r in runs if r] if state == states.SUCCESS else None
    return {**view, "state": state, "result": result,
            "error": failed.get("error") if failed else None}  # fmt: skip


_ENDED_BADLY = states.TERMINAL - {states.SUCCESS}


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
    workflow = await d.broker.workflow(run_id)
    if workflow is not None:
        return await _revoke_workflow(d, workflow, body.terminate)
    verdict = await d.broker.revoke(run_id, d.codec, body.terminate)
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


async def _revoke_workflow(d: Deps, workflow: Workflow, terminate: bool) -> Response:
    """Revoke every run of a workflow that has not finished; those not submitted yet (a
    chain's later links) are marked and never start. 409 when all had finished."""
    ids = list(dict.fromkeys([*workflow.members, *([workflow.result] if workflow.result else [])]))
    outcomes = {i: (await d.broker.revoke(i, d.codec, terminate)).outcome.lower() for i in ids}
    if all(o == "finished" for o in outcomes.values()):
        raise Conflict(f"workflow {workflow.id}: every run already finished")
    answer = {"id": workflow.id, "revoked": True, "terminate": terminate, "runs": outcomes}
    return JSONResponse(answer, status_code=202)


_RETRYABLE = frozenset({states.FAILURE, states.REVOKED, states.DEAD})


async def retry_run(request: Request) -> Response:
    """Submit a failed, revoked or dead run again as a new run, its ``parent_id`` the old
    one (202). Unknown run: 404; a run in another state: 409. The new run has the old
    one's task, arguments and options, but not its place in a workflow (docs/canvas.md)."""
    d = deps(request)
    run_id: str = request.path_params["id"]
    fields = await d.broker.record(run_id)
    if fields is None:
        raise RunNotFound(f"no run with id {run_id!r}", details={"id": run_id})
    state = (fields.get(b"state") or b"").decode()
    if state not in _RETRYABLE:
        raise Conflict(
            f"run {run_id} is {state or 'unknown'}: only a failed, revoked or dead run is retried",
            details={"id": run_id, "state": state},
        )
    old = decode_envelope(fields[b"env"])
    message = msgspec.structs.replace(
        old,
        id=new_id(),
        created_at=now_ms(),
        eta=None,
        expires=None,
        retries=0,
        parent_id=run_id,
        root_id=old.root_id or run_id,
        chain=None,
        chord=None,
        chord_body=False,
        link=None,
        link_error=None,
    )
    if not all(await d.broker.submit([Submission(message, fields.get(b"body", b""))])):
        raise Conflict("a run with this id already exists")
    location = f"/runs/{message.id}"
    answer = {
        "id": message.id,
        "task": message.task,
        "state": states.PENDING,
        "parent_id": run_id,
        "links": {"self": location},
    }
    return JSONResponse(answer, status_code=202, headers={"Location": location})


routes = [
    Route("/runs/{id}", get_run, methods=["GET"]),
    Route("/runs/{id}/revoke", revoke_run, methods=["POST"]),
    Route("/runs/{id}/retry", retry_run, methods=["POST"]),
]
