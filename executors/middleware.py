"""Cross-cutting behaviour around each execution, as small classes with typed hooks.

The runner calls every middleware's hooks directly, in order; each owns the task options
it reads. The consumer loop stays short because it knows none of this.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from executors.board import SlotBoard
from executors.heartbeat import Counters
from sdk import states
from sdk.broker import Broker
from sdk.protocol import Message, plans
from sdk.task import Task, parse_rate


class Middleware(Protocol):
    def before_execute(self, task: Task[Any, Any], message: Message) -> None:
        """Called in the slot right before the task function runs."""

    def after_execute(self, task: Task[Any, Any], message: Message, state: str) -> None:
        """Called in the slot once the run's outcome (``state``) is known."""


class HardTimeLimit:
    """``time_limit``: publishes each run's deadline on the slot board, where the worker's
    watchdog finds overdue runs and has the pool stop them (prefork kills the child)."""

    def __init__(self, board: SlotBoard, index: int) -> None:
        self.board = board
        self.index = index

    def before_execute(self, task: Task[Any, Any], message: Message) -> None:
        self.board.running(self.index, message.id, task.options.time_limit)

    def after_execute(self, task: Task[Any, Any], message: Message, state: str) -> None:
        self.board.idle(self.index)


class RateLimit:
    """``rate_limit``: runs of a task start no faster than its rate across all workers;
    a slot waits its turn (the run stays claimed meanwhile)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def before_execute(self, task: Task[Any, Any], message: Message) -> None:
        per_second = parse_rate(task.options.rate_limit)
        if per_second is None:
            return
        interval = max(1, round(1000 / per_second))
        while wait_ms := self.broker.scripts(plans.rate(self.broker.keys, task.name, interval)):
            time.sleep(min(wait_ms, 1000) / 1000)

    def after_execute(self, task: Task[Any, Any], message: Message, state: str) -> None:
        pass


class Counting:
    """Counts active, processed and failed runs for the heartbeat."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def before_execute(self, task: Task[Any, Any], message: Message) -> None:
        with self.counters.active.get_lock():
            self.counters.active.value += 1

    def after_execute(self, task: Task[Any, Any], message: Message, state: str) -> None:
        with self.counters.active.get_lock():
            self.counters.active.value -= 1
        with self.counters.processed.get_lock():
            self.counters.processed.value += 1
        if state == states.FAILURE:
            with self.counters.failed.get_lock():
                self.counters.failed.value += 1
