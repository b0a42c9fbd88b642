"""Slots as threads of the worker process. Hard time limits cannot be enforced here."""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from executors.pools.base import SlotTarget, run_in_new_loop

log = logging.getLogger("celeriac.pool.threads")


class ThreadPool:
    name: ClassVar[str] = "threads"
    run_async = staticmethod(run_in_new_loop)

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

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        # Best effort: the exception lands at the task's next Python bytecode, not
        # inside a blocking C call.
        thread = self._threads.get(index)
        if thread is not None and thread.ident is not None:
            raise_in_thread(thread.ident, exc)

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        ident = threading.get_ident()
        lock = threading.Lock()
        armed = True

        def expire() -> None:
            with lock:
                if armed:
                    raise_in_thread(ident, exc)

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
