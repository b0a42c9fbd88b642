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
from gateway.routes.http_tasks import delete_task, put_task
from gateway.state import Deps, deps
from sdk import states
from sdk.calls import Call, SendOptions, SubmitBody, build_message, build_submission
from sdk.errors import CeleriacError, Conflict
from sdk.idempotency import check_key, request_digest
from sdk.protocol import now_ms
from sdk.protocol.plans import Submission
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


def call_for(entry: Entry, options: SendOptions, args: list[Any], kwargs: dict[str, Any]) -> Call:
    """A run of ``entry``: its catalog option defaults under the given options."""
    given = {k: v for k, v in msgspec.structs.asdict(options).items() if v is not None}
    return Call(entry.name, args, kwargs, SendOptions(**{**_task_defaults(entry), **given}))


def _given_key(request: Request, item: SubmitBody | None) -> str | None:
    """The idempotency key of a single submission (the body's, else the header's)."""
    return (item.idempotency_key if item is not None else None) or request.headers.get(
        "idempotency-key"
    )


def _run_id(request: Request, key: str | None) -> str | None:
    """An idempotent run's id is of its key's partition, so one script touches both."""
    return deps(request).broker.keys.run_id_for(key) if key is not None else None


def _submission(
    entry: Entry, item: SubmitBody, request: Request, ct: str, batch: bool = False
) -> Submission:
    """Check one JSON/msgpack item against the task and encode it exactly as the SDK would."""
    entry.check(item.args, item.kwargs)
    options = intake.header_options(intake.options_of(item), request.headers, batch=batch)
    return build_submission(
        call_for(entry, options, item.args, item.kwargs),
        deps(request).codec,
        default_queue=entry.queue,
        content_type=ct,
        run_id=None if batch else _run_id(request, _given_key(request, item)),
    )


def _pickle_submission(entry: Entry, body: bytes, request: Request) -> Submission:
    """Queue a signed pickle body as it came: the gateway never unpickles it."""
    options = intake.header_options(intake.query_options(request.query_params), request.headers)
    message = build_message(
        call_for(entry, options, [], {}),
        default_queue=entry.queue,
        content_type=PICKLE,
        run_id=_run_id(request, _given_key(request, None)),
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


async def _check_callbacks(d: Deps, subs: list[Submission]) -> None:
    """422 for a callback URL the SSRF guard refuses (or when webhooks are off)."""
    for url in sorted({s.message.callback_url for s in subs if s.message.callback_url}):
        await d.callbacks.check(url)


def _idempotency_key(request: Request, item: SubmitBody | None) -> str | None:
    key = _given_key(request, item)
    return check_key(key) if key is not None else None


async def _submit_one(
    d: Deps, request: Request, sub: Submission, answer: dict[str, Any], key: str | None
) -> tuple[dict[str, Any], int]:
    """Queue the run; a repeat under the same idempotency key gets the first answer (200)."""
    if key is None:
        await _queue(d, [sub])
        return answer, 202
    digest = request_digest(
        sub.message.task,
        request.headers.get("content-type"),
        await request.body(),
        request.headers.get("x-callback-url"),
        str(request.query_params),
    )
    first = await d.idempotent.submit(sub, key, digest, answer)
    return (answer, 202) if first is None else (first, 200)


# -- endpoints -------------------------------------------------------------------------------
async def submit(request: Request) -> Response:
    d = deps(request)
    ct = intake.content_type(request.headers, (*intake.BODY_TYPES, PICKLE))
    body = await request.body()
    item: SubmitBody | None = None
    if ct == PICKLE:
        d.codec.verify(body, PICKLE, request.headers.get(SIGNATURE_HEADER))
        entry = await d.catalog.get(request.path_params["name"])
        sub = _pickle_submission(entry, body, request)
    else:
        item = intake.decode_submit(body, ct)
        entry = await d.catalog.get(request.path_params["name"])
        sub = _submission(entry, item, request, ct)
    key = _idempotency_key(request, item)
    await _check_callbacks(d, [sub])
    location = f"/runs/{sub.message.id}"
    answer: dict[str, Any] = {
        "id": sub.message.id,
        "task": entry.name,
        "state": _state(sub),
        "links": {"self": location},
    }
    answer, status = await _submit_one(d, request, sub, answer, key)
    return JSONResponse(answer, status, {"Location": f"/runs/{answer['id']}"})


async def submit_batch(request: Request) -> Response:
    d = deps(request)
    ct = intake.content_type(request.headers, intake.BODY_TYPES)
    items = intake.decode_batch(await request.body(), ct)
    entry = await d.catalog.get(request.path_params["name"])
    subs = [
        _at(i, partial(_submission, entry, item, request, ct, True)) for i, item in enumerate(items)
    ]
    await _check_callbacks(d, subs)
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
    """One path, four methods: GET reads the entry, POST submits a run, PUT and DELETE
    register and remove an HTTP task (``gateway/routes/http_tasks.py``)."""
    handler = {"POST": submit, "PUT": put_task, "DELETE": delete_task}.get(request.method, get_task)
    return await handler(request)


routes = [
    Route("/tasks", list_tasks, methods=["GET"]),
    Route("/tasks/{name}", task, methods=["GET", "POST", "PUT", "DELETE"]),
    Route("/tasks/{name}/batch", submit_batch, methods=["POST"]),
]
