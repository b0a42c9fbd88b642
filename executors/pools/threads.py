"""Slots as threads of the worker process. Hard time limits cannot be enforced here."""

from __future__ import annotations

import logging
import threading
import time
from typing import ClassVar

from executors.pools.base import SlotTarget

log = logging.getLogger("celeriac.pool.threads")


class ThreadPool:
    name: ClassVar[str] = "threads"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: dict[int, threading.Thread] = {}
        self._target: SlotTarget | None = None

    def _spawn(self, index: int) -> None:
        assert self._target is not None
        thread = threading.Thread(
            target=self._run, args=(self._target, index), name=f"slot-{index}", daemon=True
        )
        self._threads[index] = thread
        thread.start()

    def _run(self, target: SlotTarget, index: int) -> None:
        try:
            target(index, self._stop)
        except Exception:
            log.exception("slot %d crashed; it will be replaced", index)

    def start(self, target: SlotTarget, concurrency: int) -> None:
        self._target = target
        for index in range(concurrency):
            self._spawn(index)

    def supervise(self) -> None:
        if self._stop.is_set():
            return
        for index, thread in list(self._threads.items()):
            if not thread.is_alive():
                self._spawn(index)

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads.values())

    def kill(self) -> None:
        # Threads cannot be killed; they are daemons and die with the process, leaving
        # their runs pending for the next life of this worker or another one.
        self._stop.set()

    def alive(self) -> int:
        return sum(t.is_alive() for t in self._threads.values())
