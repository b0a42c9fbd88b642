"""``/tasks``: the catalog, and submitting runs (one, or a batch of one task)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import intake
from gateway.catalog import Entry, public
from gateway.responses import JSONResponse
from gateway.state import Deps, deps
from sdk import states
from sdk.broker import Submission
from sdk.calls import Call, SendOptions, SubmitBody, build_message, build_submission
from sdk.errors import CeleriacError, Conflict
from sdk.protocol import now_ms
from sdk.serializers import PICKLE

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Task options that default a run's options, as ``Task.apply_async`` applies them.
TASK_DEFAULTS = ("priority", "max_retries", "ignore_result", "expires")
SIGNATURE_HEADER = "x-celeriac-signature"


# -- building runs ---------------------------------------------------------------------------
def _task_defaults(entry: Entry) -> dict[str, Any]:
    found = {k: entry.options[k] for k in TASK_DEFAULTS if entry.options.get(k) is not None}
    try:
        msgspec.convert(found, SendOptions)
    except msgspec.ValidationError as exc:
        log.warning("ignoring bad option defaults of task %s: %s", entry.name, exc)
        return {}
    return found


def _call(entry: Entry, options: SendOptions, args: list[Any], kwargs: dict[str, Any]) -> Call:
    given = {k: v for k, v in msgspec.structs.asdict(options).items() if v is not None}
    return Call(entry.name, args, kwargs, SendOptions(**{**_task_defaults(entry), **given}))


def _submission(
    entry: Entry, item: SubmitBody, request: Request, ct: str, batch: bool = False
) -> Submission:
    """Check one JSON/msgpack item against the task and encode it exactly as the SDK would."""
    entry.check(item.args, item.kwargs)
    options = intake.header_options(intake.options_of(item), request.headers, batch=batch)
    return build_submission(
        _call(entry, options, item.args, item.kwargs),
        deps(request).codec,
        default_queue=entry.queue,
        content_type=ct,
    )


def _pickle_submission(entry: Entry, body: bytes, request: Request) -> Submission:
    """Queue a signed pickle body as it came: the gateway never unpickles it."""
    options = intake.header_options(intake.query_options(request.query_params), request.headers)
    message = build_message(
        _call(entry, options, [], {}), default_queue=entry.queue, content_type=PICKLE
    )
    message.signature = request.headers.get(SIGNATURE_HEADER)
    return Submission(message, body)


def _at(index: int, build: Callable[[], T]) -> T:
    """Run ``build`` for batch item ``index``; its error names the item."""
    try:
        return build()
    except CeleriacError as exc:
        details = exc.details if isinstance(exc.details, dict) else {"reason": exc.details}
        exc.message = f"items[{index}]: {exc.message}"
        exc.details = {"index": index, **{k: v for k, v in details.items() if v is not None}}
        raise


async def _queue(d: Deps, subs: list[Submission]) -> None:
    """Return only once every run is durably in Redis."""
    created = await d.broker.submit(subs)
    if not all(created):
        raise Conflict("a run with this id already exists")


def _state(sub: Submission) -> str:
    eta = sub.message.eta
    return states.SCHEDULED if eta is not None and eta > now_ms() else states.PENDING


# -- endpoints -------------------------------------------------------------------------------
async def submit(request: Request) -> Response:
    d = deps(request)
    ct = intake.content_type(request.headers, (*intake.BODY_TYPES, PICKLE))
    body = await request.body()
    if ct == PICKLE:
        d.codec.verify(body, PICKLE, request.headers.get(SIGNATURE_HEADER))
        entry = await d.catalog.get(request.path_params["name"])
        sub = _pickle_submission(entry, body, request)
    else:
        item = intake.decode_submit(body, ct)
        entry = await d.catalog.get(request.path_params["name"])
        sub = _submission(entry, item, request, ct)
    await _queue(d, [sub])
    run_id = sub.message.id
    location = f"/runs/{run_id}"
    return JSONResponse(
        {"id": run_id, "task": entry.name, "state": _state(sub), "links": {"self": location}},
        202,
        {"Location": location},
    )


async def submit_batch(request: Request) -> Response:
    d = deps(request)
    ct = intake.content_type(request.headers, intake.BODY_TYPES)
    items = intake.decode_batch(await request.body(), ct)
    entry = await d.catalog.get(request.path_params["name"])
    subs = [
        _at(i, partial(_submission, entry, item, request, ct, True)) for i, item in enumerate(items)
    ]
    await _queue(d, subs)
    return JSONResponse({"ids": [s.message.id for s in subs]}, 202)


async def list_tasks(request: Request) -> Response:
    d = deps(request)
    entries = await d.catalog.entries()
    workers = await d.catalog.live_workers()
    items = [public(entries[name], workers) for name in sorted(entries)]
    return JSONResponse({"items": items, "next": None})


async def get_task(request: Request) -> Response:
    d = deps(request)
    entry = await d.catalog.get(request.path_params["name"])
    return JSONResponse(public(entry, await d.catalog.live_workers()))


async def task(request: Request) -> Response:
    return await (submit(request) if request.method == "POST" else get_task(request))


routes = [
    Route("/tasks", list_tasks, methods=["GET"]),
    Route("/tasks/{name}", task, methods=["GET", "POST"]),
    Route("/tasks/{name}/batch", submit_batch, methods=["POST"]),
]
