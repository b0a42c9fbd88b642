"""Tasks with an HTTP target and no Python code (docs/http-executor.md).

One shape for all three sides: the gateway's ``PUT /tasks/{name}`` and the SDK's
``App.register_http_task`` write a ``HttpTaskSpec`` into the task catalog as an entry
with a ``target``; ``--pool http`` workers read those entries and POST each run to its
target as a ``RunRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sdk.errors import Conflict, InvalidRequest
from sdk.outbound import Purpose, parse_url
from sdk.task import TaskOptions

HTTP_TARGET = Purpose("HTTP task target", "CELERIAC_HTTP_TASK_ALLOW")
METHODS = ("POST", "PUT", "PATCH")
MAX_TIMEOUT_S = 3600.0
#: the task options an HTTP task may set (the others need Python: autoretry_for, ...)
OPTIONS = frozenset(
    {
        "priority",
        "max_retries",
        "default_retry_delay",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "rate_limit",
        "time_limit",
        "ignore_result",
        "expires",
    }
)


class Target(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a run is sent: ``timeout`` bounds one request (the run's time limit, if
    shorter, wins); ``concurrency`` caps this target's requests in flight per worker."""

    url: str
    method: str = "POST"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: float = 30.0
    concurrency: int | None = None


class HttpTaskSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``PUT /tasks/{name}``."""

    target: Target
    queue: str | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    parameters: dict[str, Any] | None = None  # JSON Schema of the arguments, by name


class RunRequest(msgspec.Struct, kw_only=True):
    """The JSON a target receives for one attempt of a run."""

    id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int  # 1 for the first execution, counting redeliveries and retries
    retries: int  # retries so far
    deadline: int | None  # ms since the epoch by which the answer must come, if any
    queue: str
    parent_id: str | None
    root_id: str | None


def check_spec(name: str, spec: HttpTaskSpec) -> None:
    """Raise InvalidRequest unless ``spec`` can be run (the URL's address is checked by
    each worker before each request: a name may resolve differently there)."""
    if not name or len(name) > 200 or any(c in name for c in "{}: /"):
        raise InvalidRequest(f"invalid task name {name!r}")
    target = spec.target
    parse_url(target.url, HTTP_TARGET)
    if target.method.upper() not in METHODS:
        raise InvalidRequest(f"target.method must be one of {', '.join(METHODS)}")
    if not 0 < target.timeout <= MAX_TIMEOUT_S:
        raise InvalidRequest(f"target.timeout must be in (0, {MAX_TIMEOUT_S:g}] seconds")
    if target.concurrency is not None and target.concurrency < 1:
        raise InvalidRequest("target.concurrency must be at least 1")
    unknown = set(spec.options) - OPTIONS
    if unknown:
        raise InvalidRequest(f"unknown option(s) for an HTTP task: {', '.join(sorted(unknown))}")
    try:
        TaskOptions.of(dict(spec.options))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"options: {exc}") from None
    if spec.parameters is not None and spec.parameters.get("type", "object") != "object":
        raise InvalidRequest('parameters: a JSON Schema of "type": "object" (arguments by name)')


def catalog_entry(name: str, spec: HttpTaskSpec, default_queue: str) -> dict[str, Any]:
    """The task's catalog entry: positional arguments map to the schema's properties in
    order; without a schema, any arguments are accepted."""
    parameters = spec.parameters or {"type": "object", "x-var-positional": True}
    return {
        "name": name,
        "queue": spec.queue or default_queue,
        "options": dict(spec.options),
        "parameters": parameters,
        "positional": list(parameters.get("properties") or {}),
        "target": msgspec.to_builtins(spec.target),
    }


def is_python_task(raw: bytes | None) -> bool:
    """Whether a catalog entry (as stored) is a Python task its workers registered: one
    an HTTP task may not replace."""
    if raw is None:
        return False
    try:
        entry = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return not isinstance(entry, dict) or "target" not in entry


def python_task_conflict(name: str) -> Conflict:
    return Conflict(f"task {name!r} is a Python task its workers registered: not replaced")


def target_of(entry: Mapping[str, Any]) -> Target | None:
    """The target of a catalog entry, or None for a Python task (or a malformed one)."""
    raw = entry.get("target")
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, Target)
    except msgspec.ValidationError:
        return None


__all__ = [
    "HTTP_TARGET",
    "HttpTaskSpec",
    "RunRequest",
    "Target",
    "catalog_entry",
    "check_spec",
    "is_python_task",
    "python_task_conflict",
    "target_of",
]
