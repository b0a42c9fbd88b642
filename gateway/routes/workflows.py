"""``POST /workflows``: chains, groups and chords over HTTP, as the SDK sends them.

Bodies (docs/canvas.md): ``{"chain": [step, ...]}`` (a step is a sig, a group or a
chord), ``{"group": [sig, chain or chord, ...]}``, ``{"chord": {"header": [sig or chain
of sigs, ...], "body": sig or chain}}``, or a lone sig, where a sig is ``{"task",
"args"?, "kwargs"?, "options"?, "immutable"?}`` and its options may hold ``link`` and
``link_error`` sigs. Every member is checked against the catalog as ``POST
/tasks/{name}`` checks a run; an error names the member (``chain[1].group[0]: ...``).
The answer's ``id`` names the workflow in ``GET /runs/{id}``; its ``steps`` give the run
id of each step (of a chord: its body's, with its header's result ids).
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
from sdk.calls import Call, Plan, SendOptions, Step, build_workflow, chord_call
from sdk.errors import CeleriacError, Conflict, InvalidRequest
from sdk.protocol import JSON, new_id


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
    a value in front of its args later (unless immutable). Its ``options`` may hold
    ``link`` and ``link_error``: signatures (or lists of them) run after it."""
    if _kind(raw, path) != "task":
        raise InvalidRequest(f"{path}: a signature here")
    raw = dict(raw)
    callbacks: tuple[Call, ...] = ()
    errbacks: tuple[Call, ...] = ()
    if isinstance(raw.get("options"), dict):
        options = dict(raw["options"])
        callbacks = await _callbacks(d, options.pop("link", None), f"{path}.link")
        errbacks = await _callbacks(d, options.pop("link_error", None), f"{path}.link_error")
        raw["options"] = options
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
    return replace(call, immutable=sig.immutable, callbacks=callbacks, errbacks=errbacks)


async def _callbacks(d: Deps, raw: Any, path: str) -> tuple[Call, ...]:
    """``link`` / ``link_error``: one signature or a list, each given a value later."""
    if raw is None:
        return ()
    listed = raw if isinstance(raw, list) else [raw]
    return tuple(
        [await _call(d, item, f"{path}[{i}]", given=True) for i, item in enumerate(listed)]
    )


def replace_queue(options: SendOptions, queue: str) -> SendOptions:
    """Each member on its own task's queue unless it names one (links of a chain are
    built under the first one's defaults)."""
    return options if options.queue else msgspec.structs.replace(options, queue=queue)


async def _chain(d: Deps, raw: Any, path: str, given: bool = False) -> Call:
    """A chain as one call, its later steps carried in ``chain``: a step is a signature,
    a group (the step after it, if a signature, is its chord's body) or a chord."""
    items = _items(raw, path)
    steps: list[Call] = []
    i = 0
    while i < len(items):
        where, kind, first = f"{path}[{i}]", _kind(items[i], f"{path}[{i}]"), given or i > 0
        if kind == "task":
            steps.append(await _call(d, items[i], where, given=first))
        elif kind == "group":
            header = await _header(d, items[i]["group"], f"{where}.group", first)
            body: Call | None = None
            if i + 1 < len(items) and _kind(items[i + 1], f"{path}[{i + 1}]") == "task":
                i += 1
                body = await _call(d, items[i], f"{path}[{i}]", given=True)
            steps.append(chord_call(header, body))
        elif kind == "chord":
            steps += await _chord(d, items[i]["chord"], f"{where}.chord", first)
        else:
            steps += _flat(await _chain(d, items[i]["chain"], f"{where}.chain", first))
        i += 1
    return replace(steps[0], chain=tuple(steps[1:]))


def _flat(call: Call) -> list[Call]:
    return [replace(call, chain=()), *call.chain]


async def _header(d: Deps, raw: Any, path: str, given: bool) -> list[Call]:
    """A group's (a chord header's) members: signatures, or chains of signatures."""
    members = []
    for i, item in enumerate(_items(raw, path)):
        where = f"{path}[{i}]"
        if _kind(item, where) == "chain":
            links = _items(item["chain"], f"{where}.chain")
            calls = [
                await _call(d, link, f"{where}.chain[{j}]", given=given or j > 0)
                for j, link in enumerate(links)
            ]
            members.append(replace(calls[0], chain=tuple(calls[1:])))
        else:
            members.append(await _call(d, item, where, given=given))
    return members


async def _chord(d: Deps, raw: Any, path: str, given: bool = False) -> list[Call]:
    """A chord as chain steps: the chord (its body with its header), then the rest of
    its body when that is a chain."""
    if not isinstance(raw, dict) or set(raw) != {"header", "body"}:
        raise InvalidRequest(f'{path}: {{"header": [...], "body": {{...}}}}')
    header = await _header(d, raw["header"], f"{path}.header", given)
    if _kind(raw["body"], f"{path}.body") == "chain":
        body = _flat(await _chain(d, raw["body"]["chain"], f"{path}.body.chain", given=True))
    else:
        body = [await _call(d, raw["body"], f"{path}.body", given=True)]
    return [chord_call(header, body[0]), *body[1:]]


def _plan(d: Deps, call: Call, path: str) -> Plan:
    try:
        return build_workflow(
            call, d.codec, d.broker.keys, default_queue=d.settings.default_queue, content_type=JSON
        )
    except CeleriacError as exc:
        raise _named(path, exc) from None


async def _queue(d: Deps, plans: list[Plan]) -> None:
    for plan in plans:
        if plan.open is not None and not await d.broker.scripts(plan.open):
            raise Conflict("a chord with this body id exists already")
    subs = [sub for plan in plans for sub in plan.submissions]
    if not all(await d.broker.submit(subs)):
        raise Conflict("a run with one of these ids already exists")


async def _send(d: Deps, raw: Any) -> tuple[Workflow, list[Step]]:
    kind = _kind(raw, "workflow")
    workflow_id = new_id()
    if kind == "group":
        plans = []
        for i, item in enumerate(_items(raw["group"], "group")):
            where = f"group[{i}]"
            plans.append(_plan(d, await _flow(d, item, where), where))
        await _queue(d, plans)
        members = [plan.steps[-1].id for plan in plans]
        return Workflow(id=workflow_id, kind=kind, members=members), []
    plan = _plan(d, await _flow(d, raw, kind), kind)
    await _queue(d, [plan])
    steps = plan.steps
    # a chord's members: its header's runs; a chain's: its steps
    members = list(steps[0].header or ()) if kind == "chord" else [s.id for s in steps]
    return Workflow(id=workflow_id, kind=kind, members=members, result=steps[-1].id), steps


async def _flow(d: Deps, raw: Any, path: str) -> Call:
    """A signature, chain or chord as one call carrying what follows it."""
    kind = _kind(raw, path)
    if kind == "task":
        return await _call(d, raw, path)
    if kind == "chain":
        return await _chain(d, raw["chain"], f"{path}.chain" if path != "chain" else path)
    if kind == "chord":
        first, *rest = await _chord(d, raw["chord"], f"{path}.chord" if path != "chord" else path)
        return replace(first, chain=tuple(rest))
    return chord_call(await _header(d, raw["group"], f"{path}.group", False), None)


async def submit_workflow(request: Request) -> Response:
    d = deps(request)
    intake.content_type(request.headers, (JSON,))
    try:
        raw = msgspec.json.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON body: {exc}") from None
    workflow, steps = await _send(d, raw)
    await d.broker.save_workflow(workflow)
    location = f"/runs/{workflow.id}"
    answer = {
        "id": workflow.id,
        "kind": workflow.kind,
        "members": workflow.members,
        "result_id": workflow.result,
        "steps": [{"id": s.id, "header": s.header} for s in steps],
        "links": {"self": location},
    }
    return JSONResponse(answer, 202, {"Location": location})


routes = [Route("/workflows", submit_workflow, methods=["POST"])]
