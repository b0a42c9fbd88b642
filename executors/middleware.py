"""The worker's own middleware: each owns the task options it reads (``sdk/middleware.py``
defines the hooks). The runner just calls the task; these make the rest of a Celery
task's options true.

- ``RateLimit``: ``rate_limit``, shared by every worker through Redis.
- ``HardTimeLimit``: ``time_limit``, enforced by the worker's watchdog.
- ``SoftTimeLimit``: ``soft_time_limit``, an exception raised inside the task.
- ``Retries``: ``self.retry()``, ``autoretry_for``, ``max_retries`` and the backoff options.
- ``Counting``: the active/processed/failed counters of the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from executors.board import SlotBoard
from executors.heartbeat import Counters
from sdk import states
from sdk.broker import Broker
from sdk.errors import MaxRetriesExceeded, Reject, Retry, SoftTimeLimitExceeded
from sdk.exceptions_wire import describe
from sdk.middleware import Execution, Middleware, Outcome
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts
from sdk.task import TaskOptions, parse_rate

log = logging.getLogger("celeriac.runner")

#: Provided by the pool: raise an exception inside the running slot after some seconds.
Interrupter = Callable[[float, type[BaseException]], AbstractContextManager[None]]


class HardTimeLimit(Middleware):
    """``time_limit``: publishes each run's deadline on the slot board, where the worker's
    watchdog finds overdue runs and has the pool stop them (prefork kills the child)."""

    def __init__(self, board: SlotBoard, index: int) -> None:
        self.board = board
        self.index = index

    def before_execute(self, run: Execution) -> None:
        self.board.running(self.index, run.message.id, run.task.options.time_limit)

    def after_execute(self, run: Execution, outcome: Outcome) -> None:
        self.board.idle(self.index)


class SoftTimeLimit(Middleware):
    """``soft_time_limit``: ``SoftTimeLimitExceeded`` raised inside the task, by the pool."""

    def __init__(self, interrupter: Interrupter) -> None:
        self.interrupter = interrupter

    def around_execute(self, run: Execution, call: Callable[[], Any]) -> Any:
        soft = run.task.options.soft_time_limit
        if not soft:
            return call()
        with self.interrupter(float(soft), SoftTimeLimitExceeded):
            return call()

    async def around_execute_async(self, run: Execution, call: Callable[[], Awaitable[Any]]) -> Any:
        soft = run.task.options.soft_time_limit
        if not soft:
            return await call()
        with self.interrupter(float(soft), SoftTimeLimitExceeded):
            return await call()


class RateLimit(Middleware):
    """``rate_limit``: runs of a task start no faster than its rate across all workers;
    a slot waits its turn (the run stays claimed meanwhile). The asyncio pool waits on its
    loop, through ``async_scripts``."""

    def __init__(self, broker: Broker, async_scripts: AsyncScripts | None = None) -> None:
        self.broker = broker
        self.async_scripts = async_scripts

    def before_execute(self, run: Execution) -> None:
        interval = _interval_ms(run.task.options)
        if interval is None:
            return
        while wait_ms := self.broker.scripts(plans.rate(self.broker.keys, run.task.name, interval)):
            time.sleep(min(wait_ms, 1000) / 1000)

    async def before_execute_async(self, run: Execution) -> None:
        interval = _interval_ms(run.task.options)
        if interval is None:
            return
        if self.async_scripts is None:  # no async client given: the sync wait
            self.before_execute(run)
            return
        keys, name = self.broker.keys, run.task.name
        while wait_ms := await self.async_scripts(plans.rate(keys, name, interval)):
            await asyncio.sleep(min(wait_ms, 1000) / 1000)


def _interval_ms(options: TaskOptions) -> int | None:
    """Milliseconds between two starts of a rate-limited task; None without a limit."""
    per_second = parse_rate(options.rate_limit)
    return None if per_second is None else max(1, round(1000 / per_second))


class Retries(Middleware):
    """Another attempt later for ``Retry`` (``self.retry()``) and ``autoretry_for``
    errors, or a failure once ``max_retries`` are used up; ``Reject`` dead-letters the run
    (or, with ``requeue=True``, runs it again at once, as one more retry)."""

    def on_error(self, run: Execution, exc: Exception) -> Outcome | None:
        if isinstance(exc, Reject):
            return self._reject(run, exc)
        if isinstance(exc, Retry):
            return self._retry(run, exc)
        if isinstance(exc, run.task.options.autoretry_for):
            return self._retry(run, Retry(exc=exc))
        return None

    def _retry(self, run: Execution, retry: Retry) -> Outcome:
        message, options = run.message, run.task.options
        limit = _first(retry.max_retries, message.max_retries, options.max_retries)
        if limit is not None and message.retries >= limit:
            exc = retry.exc or MaxRetriesExceeded(f"{message.task}: {limit} retries used up")
            run.task.on_failure(exc, message.id, run.args, run.kwargs, describe(exc)["traceback"])
            return run.outcomes.failure(exc, message)
        cause: BaseException = retry.exc or retry
        error = describe(cause)
        run.task.on_retry(cause, message.id, run.args, run.kwargs, error["traceback"])
        countdown = retry_delay(options, message.retries, retry.countdown)
        log.info(
            "run %s (%s) retries in %.1fs: %s",
            message.id,
            message.task,
            countdown,
            error["message"],
        )
        return run.outcomes.retry(cause, countdown)

    def _reject(self, run: Execution, reject: Reject) -> Outcome:
        log.warning("run %s (%s) rejected: %s", run.message.id, run.message.task, reject)
        if reject.requeue:
            return self._retry(run, Retry(exc=reject, countdown=0))
        dead = run.outcomes.failure(reject, run.message)
        return Outcome(states.DEAD, dead.fields)


class Counting(Middleware):
    """Counts slot ``index``'s active, processed and failed runs for the heartbeat."""

    def __init__(self, counters: Counters, index: int) -> None:
        self.counters = counters
        self.index = index

    def before_execute(self, run: Execution) -> None:
        self.counters.started(self.index)

    def after_execute(self, run: Execution, outcome: Outcome) -> None:
        self.counters.finished(self.index, failed=outcome.state == states.FAILURE)


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


__all__ = [
    "Counting",
    "HardTimeLimit",
    "RateLimit",
    "Retries",
    "SoftTimeLimit",
    "retry_delay",
]
