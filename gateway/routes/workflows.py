"""``POST /workflows``: chains, groups and chords over HTTP, as the SDK sends them.

Bodies (docs/canvas.md): ``{"chain": [sig, ...]}``, ``{"group": [sig or chain, ...]}``,
``{"chord": {"header": [sig, ...], "body": sig}}``, where a sig is
``{"task", "args"?, "kwargs"?, "options"?, "immutable"?}``. Every member is checked
against the catalog as ``POST /tasks/{name}`` checks a run; an error names the member
(``chain[1]: ...``). The answer's ``id`` names the workflow in ``GET /runs/{id}``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import intake
from gateway.responses import JSONResponse
from gateway.routes.tasks import call_for
from gateway.state import Deps, deps
from sdk.broker import Workflow
from sdk.calls import Call, SendOptions, build_chord, build_submission
from sdk.errors import CeleriacError, Conflict, InvalidRequest
from sdk.protocol import JSON, new_id
from sdk.protocol.plans import Submission


class SignatureBody(msgspec.Struct, forbid_unknown_fields=True):
    """One member: a task call (the JSON form of ``sdk.canvas.Signature``)."""

    task: str
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    options: SendOptions = msgspec.field(default_factory=SendOptions)
    immutable: bool = False


def _named(path: str, exc: CeleriacError) -> CeleriacError:
    """``exc``, its message prefixed with the member it is about."""
    exc.message = f"{path}: {exc.message}"
    details = exc.details if isinstance(exc.details, dict) else {"reason": exc.details}
    exc.details = {"member": path, **{k: v for k, v in details.items() if v is not None}}
    return exc


def _items(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(f"{path}: a non-empty list of members")
    return raw


def _kind(raw: Any, path: str) -> str:
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ("chain", "group", "chord"):
        return str(next(iter(raw)))
    if isinstance(raw, dict) and "task" in raw:
        return "task"
    raise InvalidRequest(f"{path}: not a signature, chain, group or chord")


async def _call(d: Deps, raw: Any, path: str, given: bool = False) -> Call:
    """A member signature as a run, checked against the catalog; ``given``: it is given
    a value in front of its args later (unless immutable)."""
    if _kind(raw, path) != "task":
        raise InvalidRequest(f"{path}: a signature here (nesting this deep is not supported)")
    try:
        sig = msgspec.convert(raw, SignatureBody)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"{path}: {exc}") from None
    try:
        entry = await d.catalog.get(sig.task)
        if given and not sig.immutable:
            entry.check_after(sig.args, sig.kwargs)
        else:
            entry.check(sig.args, sig.kwargs)
        call = call_for(entry, replace_queue(sig.options, entry.queue), sig.args, sig.kwargs)
    except CeleriacError as exc:
        raise _named(path, exc) from None
    return replace(call, immutable=sig.immutable)


def replace_queue(options: SendOptions, queue: str) -> SendOptions:
    """Each member on its own task's queue unless it names one (links of a chain are
    built under the first one's defaults)."""
    return options if options.queue else msgspec.structs.replace(options, queue=queue)


async def _chain(d: Deps, raw: Any, path: str) -> Submission:
    """A chain as its first run, carrying the later links (their ids given here)."""
    items = _items(raw, path)
    calls = [await _call(d, item, f"{path}[{i}]", given=i > 0) for i, item in enumerate(items)]
    return _submission(d, replace(calls[0], chain=tuple(calls[1:])), path)


def _ids(sub: Submission) -> list[str]:
    """The run ids of a chain's links, in order."""
    return [sub.message.id, *(link.message.id for link in sub.message.chain or [])]


def _submission(d: Deps, call: Call, path: str) -> Submission:
    try:
        return build_submission(
            call, d.codec, default_queue=d.settings.default_queue, content_type=JSON,
            keys=d.broker.keys,
        )  # fmt: skip
    except CeleriacError as exc:
        raise _named(path, exc) from None


async def _queue(d: Deps, subs: list[Submission]) -> None:
    if not all(await d.broker.submit(subs)):
        raise Conflict("a run with one of these ids already exists")


async def _send(d: Deps, raw: Any) -> Workflow:
    kind = _kind(raw, "workflow")
    body = raw[kind] if kind != "task" else None
    workflow_id = new_id()
    if kind == "chain":
        sub = await _chain(d, body, "chain")
        await _queue(d, [sub])
        ids = _ids(sub)
        return Workflow(id=workflow_id, kind=kind, members=ids, result=ids[-1])
    if kind == "group":
        subs, results = [], []
        for i, item in enumerate(_items(body, "group")):
            where = f"group[{i}]"
            if _kind(item, where) == "chain":
                sub = await _chain(d, item["chain"], f"{where}.chain")
            else:
                sub = _submission(d, await _call(d, item, where), where)
            subs.append(sub)
            results.append(_ids(sub)[-1])
        await _queue(d, subs)
        return Workflow(id=workflow_id, kind=kind, members=results)
    if kind == "chord":
        if not isinstance(body, dict) or set(body) != {"header", "body"}:
            raise InvalidRequest('chord: {"header": [...], "body": {...}}')
        header = [
            await _call(d, item, f"chord.header[{i}]")
            for i, item in enumerate(_items(body["header"], "chord.header"))
        ]
        last = await _call(d, body["body"], "chord.body", given=True)
        plan = build_chord(
            header, last, d.codec, d.broker.keys,
            default_queue=d.settings.default_queue, content_type=JSON,
        )  # fmt: skip
        if not await d.broker.scripts(plan.open):
            raise Conflict("a chord with this body id exists already")
        await _queue(d, plan.header)
        ids = [s.message.id for s in plan.header]
        return Workflow(id=workflow_id, kind=kind, members=ids, result=plan.body_id)
    raise InvalidRequest('workflow: {"chain": [...]}, {"group": [...]} or {"chord": {...}}')


async def submit_workflow(request: Request) -> Response:
    d = deps(request)
    intake.content_type(request.headers, (JSON,))
    try:
        raw = msgspec.json.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON body: {exc}") from None
    workflow = await _send(d, raw)
    await d.broker.save_workflow(workflow)
    location = f"/runs/{workflow.id}"
    answer = {
        "id": workflow.id,
        "kind": workflow.kind,
        "members": workflow.members,
        "result_id": workflow.result,
        "links": {"self": location},
    }
    return JSONResponse(answer, 202, {"Location": location})


routes = [Route("/workflows", submit_workflow, methods=["POST"])]
