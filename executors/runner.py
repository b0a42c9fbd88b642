"""Execute one run: decode its arguments, call the task, turn the outcome into fields."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from executors.pools.base import LoopSlots, run_in_new_loop
from sdk import protocol as p
from sdk import states
from sdk.app import App
from sdk.builtins import builtin
from sdk.context import Request, current_request
from sdk.errors import (
    CeleriacError,
    SerializationError,
    TaskNotFound,
    Terminated,
)
from sdk.exceptions_wire import describe
from sdk.middleware import Execution, Middleware, Outcome
from sdk.serializers import Codec

if TYPE_CHECKING:
    from sdk.task import Task

log = logging.getLogger("celeriac.runner")

#: Writes a custom state and its JSON meta for a run (Broker.update_state).
StateWriter = Callable[[p.Message, str, bytes], None]


class Runner:
    """Runs messages against an App's tasks: decodes the arguments, calls the task through
    the middleware, and turns what came back into an outcome. Knows nothing about Redis,
    pools, retries or limits (``executors/middleware.py``)."""

    def __init__(
        self,
        *,
        app: App,
        codec: Codec,
        worker_id: str,
        middleware: Sequence[Middleware] = (),
        state_writer: StateWriter | None = None,
        run_async: Callable[[Awaitable[Any]], Any] = run_in_new_loop,
        more_tasks: Callable[[str], Task[Any, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self._more_tasks = more_tasks  # tasks the pool brings (executors/pools/base.py)
        self.codec = codec
        self.worker_id = worker_id
        self.state_writer = state_writer
        self.run_async = run_async
        self._async: dict[str, bool] = {}  # by task name: is it an async def
        self._builtins: dict[str, Task[Any, Any]] = {}
        # Each hook's middleware: those that define it (the defaults do nothing), in the
        # order it is called. Every call per run counts under threads -c 8, where each
        # microsecond a run holds the GIL is paid again by the slots queueing for it.
        self._before = _defining(middleware, "before_execute")
        self._around = _defining(middleware, "around_execute")[::-1]  # innermost first
        self._on_error = _defining(middleware, "on_error")
        self._after = _defining(middleware, "after_execute")[::-1]
        self._before_async = _defining(middleware, "before_execute", "before_execute_async")
        self._around_async = _defining(middleware, "around_execute_async")[::-1]

    def run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = self._run(self._execution(message, body, attempts))
        except CeleriacError as exc:  # the run could not even be called
            outcome = self.failure(exc, message)
        outcome.runtime_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    async def run_on_loop(
        self, message: p.Message, body: bytes, attempts: int, slots: LoopSlots
    ) -> Outcome:
        """``run`` for a slot that is a coroutine (the asyncio pool): an ``async def``
        task is awaited on the loop, through the middleware's async hooks; a sync one
        runs whole in a thread, as under the threads pool."""
        task = self._task(message.task)
        if task is None or not self._is_async(task):
            return cast(Outcome, await slots.call_in_thread(self.run, message, body, attempts))
        started = time.perf_counter()
        try:
            outcome = await self._run_async(self._execution(message, body, attempts), slots)
        except CeleriacError as exc:
            outcome = self.failure(exc, message)
        outcome.runtime_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    def _task(self, name: str) -> Task[Any, Any] | None:
        """The app's task, or a built-in one (``sdk/builtins.py``), made once, or one of
        the pool's own."""
        task = self.app.tasks.get(name)
        if task is None and self._more_tasks is not None:
            task = self._more_tasks(name)
        if task is None and name.startswith("celeriac."):
            task = self._builtins.get(name)
            if task is None and (made := builtin(self.app, name)) is not None:
                task = self._builtins[name] = made
        return task

    def _is_async(self, task: Task[Any, Any]) -> bool:
        known = self._async.get(task.name)
        if known is None:
            known = self._async[task.name] = inspect.iscoroutinefunction(task.fn)
        return known

    def _execution(self, message: p.Message, body: bytes, attempts: int) -> Execution:
        task = self._task(message.task)
        if task is None:
            raise TaskNotFound(f"task {message.task!r} is not registered on this worker")
        payload = self.codec.decode(body, message.content_type, message.signature)
        try:
            args = tuple(payload.get("args") or ())
            kwargs = dict(payload.get("kwargs") or {})
        except (AttributeError, TypeError, ValueError) as exc:
            raise SerializationError(f"body is not {{'args', 'kwargs'}}: {exc}") from exc
        return Execution(task, message, args, kwargs, attempts, self)

    def _run(self, run: Execution) -> Outcome:
        for mw in self._before:
            mw.before_execute(run)
        outcome = Outcome(states.FAILURE)
        token = current_request.set(self._request(run))
        try:
            outcome = self._call(run)
        finally:
            current_request.reset(token)
            for mw in self._after:
                mw.after_execute(run, outcome)
        return outcome

    async def _run_async(self, run: Execution, slots: LoopSlots) -> Outcome:
        for mw in self._before_async:
            if type(mw).before_execute_async is Middleware.before_execute_async:
                mw.before_execute(run)  # the default twin, without a coroutine per call
            else:
                await mw.before_execute_async(run)
        outcome = Outcome(states.FAILURE)
        token = current_request.set(self._request(run))
        try:
            outcome = await self._call_async(run, slots)
        finally:
            current_request.reset(token)
            for mw in self._after:
                mw.after_execute(run, outcome)
        return outcome

    def _request(self, run: Execution) -> Request:
        message = run.message
        return Request(
            id=message.id,
            task=message.task,
            args=run.args,
            kwargs=run.kwargs,
            retries=message.retries,
            delivery_count=run.attempts,
            queue=message.queue,
            priority=message.priority,
            worker=self.worker_id,
            parent_id=message.parent_id,
            root_id=message.root_id,
            eta=message.eta,
            expires=message.expires,
            update_state=self._state_updater(message),
        )

    def _state_updater(self, message: p.Message) -> Callable[[str, Any], None] | None:
        writer = self.state_writer
        if writer is None:
            return None

        def update(state: str, meta: Any) -> None:
            writer(message, state, self.codec.encode(meta, "json")[0])

        return update

    def _call(self, run: Execution) -> Outcome:
        call = functools.partial(self._invoke, run)
        for mw in self._around:  # the first middleware wraps all the others
            call = functools.partial(mw.around_execute, run, call)
        try:
            value = call()
        except Exception as exc:
            return self._settle(run, exc)
        return self._settled(run, value)

    async def _call_async(self, run: Execution, slots: LoopSlots) -> Outcome:
        def invoke() -> Awaitable[Any]:
            return slots.await_run(run.task(*run.args, **run.kwargs))

        call: Callable[[], Awaitable[Any]] = invoke
        for mw in self._around_async:
            call = functools.partial(mw.around_execute_async, run, call)
        try:
            value = await call()
        except Exception as exc:
            return self._settle(run, exc)
        return self._settled(run, value)

    def _settle(self, run: Execution, exc: Exception) -> Outcome:
        """The outcome of a call that raised ``exc``."""
        task, message = run.task, run.message
        if isinstance(exc, Terminated):
            log.warning("run %s (%s) terminated", message.id, message.task)
            return Outcome(states.REVOKED)
        for mw in self._on_error:
            if (instead := mw.on_error(run, exc)) is not None:
                return instead
        task.on_failure(exc, message.id, run.args, run.kwargs, describe(exc)["traceback"])
        return self.failure(exc, message)

    def _settled(self, run: Execution, value: Any) -> Outcome:
        """The outcome of a call that returned ``value``."""
        outcome = self._success(value, run.message)
        if outcome.state == states.SUCCESS:
            run.task.on_success(value, run.message.id, run.args, run.kwargs)
        return outcome

    def _invoke(self, run: Execution) -> Any:
        value = run.task(*run.args, **run.kwargs)
        return self.run_async(value) if inspect.isawaitable(value) else value

    def _success(self, value: Any, message: p.Message) -> Outcome:
        if message.ignore_result:
            return Outcome(states.SUCCESS, value=value)
        try:
            data, sig = self.codec.encode(value, message.content_type)
        except CeleriacError as exc:
            return self.failure(exc, message)
        fields: dict[str, Any] = {p.F_RESULT: data, p.F_RESULT_CT: message.content_type}
        if sig is not None:
            fields[p.F_RESULT_SIG] = sig
        return Outcome(states.SUCCESS, fields, value=value)

    # -- OutcomeBuilder (sdk/middleware.py): how middleware store a failure or a retry ----------
    def failure(self, exc: BaseException, message: p.Message) -> Outcome:
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

    def retry(self, cause: BaseException, countdown: float) -> Outcome:
        error = self.codec.encode(describe(cause), "json")[0]
        return Outcome(states.RETRY, {p.F_ERROR: error}, countdown=countdown)


def _defining(middleware: Sequence[Middleware], *hooks: str) -> list[Middleware]:
    """The middleware whose class defines one of ``hooks`` (not the do-nothing default)."""
    return [
        mw
        for mw in middleware
        if any(getattr(type(mw), h) is not getattr(Middleware, h) for h in hooks)
    ]
