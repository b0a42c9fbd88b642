"""Slots as threads of the worker process. Hard time limits cannot be enforced here."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from executors.pools.base import (
    SlotLoops,
    Slots,
    SlotTarget,
    SlotTargets,
    StopFlag,
    run_logged,
)

ESCALATE_AFTER_S = 1.0  # a cancelled async run still running after this gets the exception


class ThreadPool:
    name: ClassVar[str] = "threads"

    def __init__(self) -> None:
        self.run_async = SlotLoops()
        self._stop = threading.Event()
        self._slots = Slots(self._spawn, lambda t: not t.is_alive(), self._stop)

    @property
    def _threads(self) -> dict[int, threading.Thread]:
        return self._slots.handles

    def _spawn(self, target: SlotTarget, index: int) -> threading.Thread:
        thread = threading.Thread(
            target=self._slot, args=(target, index, self._stop), name=f"slot-{index}", daemon=True
        )
        thread.start()
        return thread

    def _slot(self, target: SlotTarget, index: int, stop: StopFlag) -> None:
        try:
            run_logged(target, index, stop)
        finally:
            self.run_async.close()

    def start(self, targets: SlotTargets, concurrency: int) -> None:
        self._slots.start(targets.run_slot, concurrency)

    def supervise(self) -> None:
        self._slots.replace_ended()

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
        return self._slots.alive()

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        # Best effort: the exception lands at the task's next Python bytecode, not
        # inside a blocking C call.
        thread = self._threads.get(index)
        if thread is not None and thread.ident is not None:
            self._interrupt(thread.ident, exc)

    def _interrupt(self, ident: int, exc: type[BaseException], message: str = "") -> None:
        # An async task is cancelled on its loop, which may sleep in its selector where an
        # asynchronous exception would not land until a timer woke it. A cancel lands only
        # at an await, so a run that has not reached one a second later gets the
        # exception too. (That one can only be a bare class: it says its docstring.)
        run = self.run_async.cancel(ident, exc(message) if message else exc)
        if run is None:
            raise_in_thread(ident, exc)
            return

        def escalate() -> None:
            if self.run_async.running(ident) is run:
                raise_in_thread(ident, exc)

        timer = threading.Timer(ESCALATE_AFTER_S, escalate)
        timer.daemon = True
        timer.start()

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        ident = threading.get_ident()
        lock = threading.Lock()
        armed = True

        def expire() -> None:
            with lock:
                if armed:
                    self._interrupt(ident, exc, f"soft time limit ({seconds}s) exceeded")

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:
                armed = False
            timer.cancel()


def raise_in_thread(ident: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` asynchronously in the thread ``ident`` (CPython's only way)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
