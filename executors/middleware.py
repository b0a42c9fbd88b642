"""Cross-cutting behaviour around each execution, as small classes with typed hooks.

The runner calls every middleware's hooks directly, in order; each owns the task options
it reads. The consumer loop stays short because it knows none of this.
"""

from __future__ import annotations

from typing import Any, Protocol

from executors.board import SlotBoard
from executors.heartbeat import Counters
from sdk import states
from sdk.protocol import Message
from sdk.task import Task


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
        self.board.running(self.index, message.id, task.options["time_limit"])

    def after_execute(self, task: Task[Any, Any], message: Message, state: str) -> None:
        self.board.idle(self.index)


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
