"""HTTP tasks as the runner sees them: each catalog entry with a target becomes a Task
whose (async) function POSTs the run to that target (docs/http-executor.md).

So an HTTP run goes through everything a Python run does — the consumer's claims and
reclaims, the finish script, retries and their backoff, time and rate limits, revoke —
and only the call itself differs. The catalog is re-read every second
(``HttpTasks.refresh``, from the worker's main loop), so tasks put, changed or deleted
over ``PUT /tasks/{name}`` take effect without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import msgspec
import redis
from standardwebhooks import Webhook

from sdk.app import App
from sdk.errors import InvalidCallback
from sdk.http_tasks import HTTP_TARGET, RunRequest, Target, target_of
from sdk.outbound import AllowList, check, retry_after
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys
from sdk.task import Task

log = logging.getLogger("celeriac.http_tasks")
USER_AGENT = "celeriac-http-executor/1"
ERROR_BODY_MAX = 2_000  # characters of an answer kept in the run's error
#: under an HTTP task's own options: retried with exponential backoff, as a function
#: platform would
DEFAULT_OPTIONS: dict[str, Any] = {"retry_backoff": True, "retry_backoff_max": 600.0}


class TargetUnavailable(Exception):
    """The target did not answer usefully (5xx, 408, 429, a timeout, no connection):
    the run is retried under its task's retry policy."""


class TargetRefused(Exception):
    """The target answered with a 4xx (other than 408 and 429) or a redirect: the run
    fails with its answer."""


class Caller:
    """Sends runs to targets: one pooled ``aiohttp.ClientSession`` (made on the pool's
    loop; httpx's async pool is ~25x slower at 64 requests in flight, see
    docs/http-executor.md), Standard Webhooks signatures, the SSRF guard before every
    request, and per-target caps on requests in flight."""

    def __init__(self, secret: str | None, allow: AllowList, max_connections: int) -> None:
        self._signer = Webhook(secret) if secret else None
        self._allow = allow
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._caps: dict[str, asyncio.Semaphore] = {}
        if self._signer is None:
            log.warning("no CELERIAC_HTTP_TASK_SECRET: requests to HTTP tasks go unsigned")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    def _cap(self, target: Target) -> asyncio.Semaphore | None:
        if target.concurrency is None:
            return None
        cap = self._caps.get(target.url)
        if cap is None:
            cap = self._caps[target.url] = asyncio.Semaphore(target.concurrency)
        return cap

    def _headers(self, target: Target, run_id: str, payload: bytes, host: str) -> dict[str, str]:
        headers = {
            **target.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": host,
        }
        if self._signer is not None:  # the run's id: the same message on every attempt
            now = datetime.now(UTC)
            headers["webhook-id"] = run_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(run_id, now, payload.decode())
        return headers

    async def call(self, task: Task[Any, Any], target: Target, args: Any, kwargs: Any) -> Any:
        """One attempt of the current run: the target's answer as the run's result."""
        request = task.request
        run_id = request.id or ""  # always set on a worker
        started = now_ms()
        limit = task.options.time_limit
        deadline = None if limit is None else started + int(limit * 1000)
        # under a time limit the limit ends the run (FAILURE), not a request timeout (retry)
        timeout = target.timeout if limit is None or target.timeout < limit else limit + 1.0
        payload = msgspec.json.encode(
            RunRequest(
                id=run_id,
                task=task.name,
                args=list(args),
                kwargs=dict(kwargs),
                attempt=request.delivery_count,
                retries=request.retries,
                deadline=deadline,
                queue=request.queue or "",
                parent_id=request.parent_id,
                root_id=request.root_id,
            )
        )
        try:
            checked = await check(target.url, self._allow, HTTP_TARGET)
        except InvalidCallback as exc:
            raise TargetRefused(exc.message) from None
        headers = self._headers(target, run_id, payload, checked.host_header)
        cap = self._cap(target) or contextlib.nullcontext()
        try:
            async with (
                cap,
                self._http().request(
                    target.method.upper(),
                    str(checked.connect_url()),
                    data=payload,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                    allow_redirects=False,
                    server_hostname=checked.url.host if checked.url.scheme == "https" else None,
                ) as response,
            ):
                answer = Answer(response.status, await response.read(), response.headers)
        except TimeoutError:
            raise task.retry(exc=TargetUnavailable(f"no answer within {timeout:g}s")) from None
        except aiohttp.ClientError as exc:
            raise task.retry(exc=TargetUnavailable(f"{type(exc).__name__}: {exc}")) from None
        return answer.value(task)


@dataclass(frozen=True, slots=True)
class Answer:
    """A target's answer, read whole."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def value(self, task: Task[Any, Any]) -> Any:
        """2xx: the JSON body (or its text, or None when empty) is the result; 5xx, 408
        and 429: retry (after ``Retry-After`` when given); anything else: a failure."""
        status = self.status
        if 200 <= status < 300:
            if not self.body:
                return None
            try:
                return msgspec.json.decode(self.body)
            except msgspec.DecodeError:
                return self.text
        what = f"HTTP {status}: {self.text[:ERROR_BODY_MAX]}".rstrip(": ")
        if status >= 500 or status in (408, 429):
            wait = retry_after(self.headers.get("retry-after"))
            raise task.retry(exc=TargetUnavailable(what), countdown=wait)
        if 300 <= status < 400:
            where = self.headers.get("location", "")
            raise TargetRefused(f"HTTP {status}: redirect to {where!r} not followed")
        raise TargetRefused(what)


RunFn = Callable[..., Coroutine[Any, Any, Any]]


class HttpTasks:
    """The catalog's HTTP tasks, as Tasks of ``app``, kept fresh by ``refresh``."""

    def __init__(self, app: App, client: redis.Redis, keys: Keys, caller: Caller) -> None:
        self._app = app
        self._client = client
        self._keys = keys
        self._caller = caller
        self._raw: dict[bytes, bytes] = {}
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._lock = threading.Lock()  # refresh runs in the main thread, get on the loop

    def get(self, name: str) -> Task[Any, Any] | None:
        """The task; on a miss its entry is read once more, so a run of a task put a
        moment ago does not fail before the next refresh."""
        task = self._tasks.get(name)
        if task is not None:
            return task
        raw = cast(bytes | None, self._client.hget(self._keys.tasks, name))
        made = None if raw is None else self._task(name, raw)
        if made is not None:
            with self._lock:
                self._tasks = {**self._tasks, name: made}
        return made

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def refresh(self) -> None:
        """Re-read the catalog: new and changed targets are used from the next run on."""
        raw = cast(dict[bytes, bytes], self._client.hgetall(self._keys.tasks))
        with self._lock:
            tasks: dict[str, Task[Any, Any]] = {}
            for field, value in raw.items():
                name = field.decode(errors="replace")
                known = self._tasks.get(name)
                if known is not None and self._raw.get(field) == value:
                    tasks[name] = known
                elif (made := self._task(name, value)) is not None:
                    tasks[name] = made
            self._raw, self._tasks = raw, tasks

    def _task(self, name: str, raw: bytes) -> Task[Any, Any] | None:
        try:
            entry = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return None
        target = target_of(entry) if isinstance(entry, dict) else None
        if target is None:
            return None  # a Python task, run by the other pools
        options = {**DEFAULT_OPTIONS, **(entry.get("options") or {}), "queue": entry.get("queue")}
        try:
            return Task(self._app, _run_fn(self._caller, target), name, bind=True, options=options)
        except (TypeError, ValueError) as exc:
            log.error("HTTP task %s has bad options, skipped: %s", name, exc)
            return None


def _run_fn(caller: Caller, target: Target) -> RunFn:
    async def run(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        return await caller.call(task, target, args, kwargs)

    return run


__all__ = ["Caller", "HttpTasks", "TargetRefused", "TargetUnavailable"]
