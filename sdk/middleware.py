"""Middleware: cross-cutting behaviour around each execution, as classes with typed hooks.

The executor calls every middleware's hooks directly, in order: the worker's own
(rate limits, time limits, retries, counters) first, then the App's
(``App(middleware=[...])``). Subclass ``Middleware`` and override the hooks you need::

    class Timing(Middleware):
        def before_execute(self, run: Execution) -> None:
            run.notes["t0"] = time.perf_counter()

        def after_execute(self, run: Execution, outcome: Outcome) -> None:
            log.info("%s took %.3fs", run.task.name, time.perf_counter() - run.notes["t0"])

A middleware instance serves every slot of a worker: under the threads pool hooks run
on several threads at once, so keep per-run state on ``run.notes``.

Under the asyncio pool, ``async def`` tasks are awaited on the worker's one event loop and
the hooks run there too: keep them quick, since a hook that blocks stops every run of the
worker. Two hooks have ``async`` twins for that pool, called instead of the sync ones for
an async task: ``before_execute_async`` (by default it calls ``before_execute``) and
``around_execute_async`` (by default it just awaits the call; a middleware that wraps
calls overrides both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from sdk.protocol import Message

if TYPE_CHECKING:
    from sdk.task import Task


class Outcome(msgspec.Struct):
    """What the finish script stores: a terminal state and the record fields to set.

    ``RETRY`` is the one non-terminal outcome: the run goes back to Redis, due in
    ``countdown`` seconds.
    """

    state: str
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    runtime_ms: int | None = None
    countdown: float | None = None
    value: Any = None  # what the task returned (SUCCESS), for the next link of a chain


class OutcomeBuilder(Protocol):
    """Turns exceptions into stored outcomes (the executor provides one)."""

    def failure(self, exc: BaseException, message: Message) -> Outcome:
        """A FAILURE recording ``exc`` (type, message, traceback, and the exception)."""

    def retry(self, cause: BaseException, countdown: float) -> Outcome:
        """A RETRY due in ``countdown`` seconds, recording ``cause`` as the last error."""


class Execution(msgspec.Struct):
    """One run being executed, as middleware sees it."""

    task: Task[Any, Any]
    message: Message
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempts: int  # executions started, this one included
    #: Builds outcomes the way the executor stores them (``failure(exc)``, ``retry(...)``).
    outcomes: OutcomeBuilder
    notes: dict[str, Any] = msgspec.field(default_factory=dict)  # per-run state for middleware


class Middleware:
    """Base class: every hook does nothing until overridden."""

    def before_execute(self, run: Execution) -> None:
        """In the slot, right before the task function is called."""

    def around_execute(self, run: Execution, call: Callable[[], Any]) -> Any:
        """Wrap the call: return ``call()`` (or what stands for it). Outer middleware wrap
        inner ones."""
        return call()

    async def before_execute_async(self, run: Execution) -> None:
        """``before_execute`` for an async task on the asyncio pool, which awaits it on its
        loop: override it where the sync hook would block (waits, network calls)."""
        self.before_execute(run)

    async def around_execute_async(self, run: Execution, call: Callable[[], Awaitable[Any]]) -> Any:
        """``around_execute`` for an async task on the asyncio pool: return ``await call()``
        (or what stands for it)."""
        return await call()

    def on_error(self, run: Execution, exc: Exception) -> Outcome | None:
        """The task raised ``exc``: return an outcome to store instead of a failure, or
        None to leave it to the next middleware (and in the end, a FAILURE)."""
        return None

    def after_execute(self, run: Execution, outcome: Outcome) -> None:
        """In the slot, once the outcome is known (also after a failure); inner first."""


__all__ = ["Execution", "Middleware", "Outcome", "OutcomeBuilder"]
