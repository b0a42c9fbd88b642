"""Execute one run: decode its arguments, call the task, turn the outcome into fields."""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from executors.middleware import Middleware
from executors.pools.base import run_in_new_loop
from sdk import protocol as p
from sdk import states
from sdk.app import App
from sdk.context import Request, current_request
from sdk.errors import (
    CeleriacError,
    MaxRetriesExceeded,
    Retry,
    SerializationError,
    SoftTimeLimitExceeded,
    TaskNotFound,
    Terminated,
)
from sdk.exceptions_wire import describe
from sdk.serializers import Codec
from sdk.task import Task, TaskOptions

log = logging.getLogger("celeriac.runner")

#: Writes a custom state and its JSON meta for a run (Broker.update_state).
StateWriter = Callable[[p.Message, str, bytes], None]

#: Provided by the pool: raise an exception inside the running slot after some seconds.
Interrupter = Callable[[float, type[BaseException]], AbstractContextManager[None]]


@contextmanager
def no_interrupter(seconds: float, exc: type[BaseException]) -> Iterator[None]:
    """For pools that cannot interrupt a running task: the limit is not enforced."""
    yield


@dataclass
class Outcome:
    """What the finish script stores: a terminal state and the record fields to set.

    ``RETRY`` is the one non-terminal outcome: the run goes back to Redis, due in
    ``countdown`` seconds.
    """

    state: str
    fields: dict[str, Any] = field(default_factory=dict)
    runtime_ms: int | None = None
    countdown: float | None = None


class Runner:
    """Runs messages against an App's tasks. Knows nothing about Redis or pools."""

    def __init__(
        self,
        *,
        app: App,
        codec: Codec,
        worker_id: str,
        middleware: Sequence[Middleware] = (),
        interrupter: Interrupter = no_interrupter,
        state_writer: StateWriter | None = None,
        run_async: Callable[[Awaitable[Any]], Any] = run_in_new_loop,
    ) -> None:
        self.app = app
        self.codec = codec
        self.worker_id = worker_id
        self.middleware = middleware
        self.interrupter = interrupter
        self.state_writer = state_writer
        self.run_async = run_async

    def run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = self._run(message, body, attempts)
        except CeleriacError as exc:  # the run could not even be called
            outcome = self._failure(exc, message)
        outcome.runtime_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    def _run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        task = self.app.tasks.get(message.task)
        if task is None:
            raise TaskNotFound(f"task {message.task!r} is not registered on this worker")
        payload = self.codec.decode(body, message.content_type, message.signature)
        try:
            args = tuple(payload.get("args") or ())
            kwargs = dict(payload.get("kwargs") or {})
        except (AttributeError, TypeError, ValueError) as exc:
            raise SerializationError(f"body is not {{'args', 'kwargs'}}: {exc}") from exc
        request = Request(
            id=message.id,
            task=message.task,
            args=args,
            kwargs=kwargs,
            retries=message.retries,
            delivery_count=attempts,
            queue=message.queue,
            priority=message.priority,
            worker=self.worker_id,
            parent_id=message.parent_id,
            root_id=message.root_id,
            eta=message.eta,
            expires=message.expires,
            update_state=self._state_updater(message),
        )
        for mw in self.middleware:
            mw.before_execute(task, message)
        outcome = Outcome(states.FAILURE)
        token = current_request.set(request)
        try:
            outcome = self._call(task, message, args, kwargs)
        finally:
            current_request.reset(token)
            for mw in reversed(self.middleware):
                mw.after_execute(task, message, outcome.state)
        return outcome

    def _state_updater(self, message: p.Message) -> Callable[[str, Any], None] | None:
        writer = self.state_writer
        if writer is None:
            return None

        def update(state: str, meta: Any) -> None:
            writer(message, state, self.codec.encode(meta, "json")[0])

        return update

    def _call(
        self,
        task: Task[Any, Any],
        message: p.Message,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Outcome:
        soft = task.options.soft_time_limit
        try:
            with self.interrupter(float(soft), SoftTimeLimitExceeded) if soft else nullcontext():
                value = task(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = self.run_async(value)
        except Retry as retry:
            return self._retry(task, message, args, kwargs, retry)
        except Terminated:
            log.warning("run %s (%s) terminated", message.id, message.task)
            return Outcome(states.REVOKED)
        except Exception as exc:
            if isinstance(exc, task.options.autoretry_for):
                return self._retry(task, message, args, kwargs, Retry(exc=exc))
            task.on_failure(exc, message.id, args, kwargs, describe(exc)["traceback"])
            return self._failure(exc, message)
        outcome = self._success(value, message)
        if outcome.state == states.SUCCESS:
            task.on_success(value, message.id, args, kwargs)
        return outcome

    def _retry(
        self,
        task: Task[Any, Any],
        message: p.Message,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: Retry,
    ) -> Outcome:
        """Another attempt later, or a failure once the retries are used up."""
        limit = _first(retry.max_retries, message.max_retries, task.options.max_retries)
        if limit is not None and message.retries >= limit:
            exc = retry.exc or MaxRetriesExceeded(f"{message.task}: {limit} retries used up")
            task.on_failure(exc, message.id, args, kwargs, describe(exc)["traceback"])
            return self._failure(exc, message)
        cause: BaseException = retry.exc or retry
        error = describe(cause)
        task.on_retry(cause, message.id, args, kwargs, error["traceback"])
        countdown = retry_delay(task.options, message.retries, retry.countdown)
        log.info(
            "run %s (%s) retries in %.1fs: %s",
            message.id,
            message.task,
            countdown,
            error["message"],
        )
        return Outcome(
            states.RETRY, {p.F_ERROR: self.codec.encode(error, "json")[0]}, countdown=countdown
        )

    def _success(self, value: Any, message: p.Message) -> Outcome:
        if message.ignore_result:
            return Outcome(states.SUCCESS)
        try:
            data, sig = self.codec.encode(value, message.content_type)
        except CeleriacError as exc:
            return self._failure(exc, message)
        fields: dict[str, Any] = {p.F_RESULT: data, p.F_RESULT_CT: message.content_type}
        if sig is not None:
            fields[p.F_RESULT_SIG] = sig
        return Outcome(states.SUCCESS, fields)

    def _failure(self, exc: BaseException, message: p.Message) -> Outcome:
        error = describe(exc)
        log.info(
            "run %s (%s) failed: %s: %s", message.id, message.task, error["type"], error["message"]
        )
        fields: dict[str, Any] = {p.F_ERROR: self.codec.encode(error, "json")[0]}
        if self.codec.signer is not None:  # the exact exception, for SDK callers that can trust it
            try:
                data, sig = self.codec.encode(exc, "pickle")
                fields[p.F_EXC], fields[p.F_EXC_SIG] = data, sig
            except CeleriacError:
                pass
        return Outcome(states.FAILURE, fields)


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def retry_delay(options: TaskOptions, retries: int, countdown: float | None) -> float:
    """Seconds until the next attempt: explicit, else exponential backoff, else the default.

    Backoff is ``base * 2**retries`` capped at ``retry_backoff_max``, with full jitter
    (a uniform draw below it) unless ``retry_jitter`` is off, as in Celery.
    """
    if countdown is not None:
        return max(0.0, float(countdown))
    backoff = options.retry_backoff
    if not backoff:
        return float(options.default_retry_delay)
    base = 1.0 if backoff is True else float(backoff)
    delay = min(float(options.retry_backoff_max), base * (2**retries))
    return random.uniform(0, delay) if options.retry_jitter else delay
