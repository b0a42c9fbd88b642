"""Slots as forked child processes, each consuming from Redis directly (no per-run IPC).

The parent only supervises: it replaces children that die or retire (max tasks, max
memory), and on a cold stop kills them. A replacement child takes the same consumer
name, so it first finishes the runs its predecessor left pending.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import ClassVar

from executors.pools.base import (
    SlotLoops,
    Slots,
    SlotTarget,
    SlotTargets,
    StopFlag,
    run_logged,
)

log = logging.getLogger("celeriac.pool.prefork")
_ctx = multiprocessing.get_context("fork")


def _child(target: SlotTarget, index: int, stop: StopFlag) -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os._exit(0 if run_logged(target, index, stop) else 1)


class PreforkPool:
    name: ClassVar[str] = "prefork"

    def __init__(self) -> None:
        self.run_async = SlotLoops()  # each child its own loop (made after the fork)
        self._stop = _ctx.Event()
        self._slots = Slots(self._spawn, lambda c: not c.is_alive(), self._stop)

    @property
    def _children(self) -> dict[int, BaseProcess]:
        return self._slots.handles

    def _spawn(self, target: SlotTarget, index: int) -> BaseProcess:
        # Objects the parent made so far are left out of every later collection, so a
        # child's collector never writes to them and their pages stay shared with it.
        gc.freeze()
        child = _ctx.Process(
            target=_child,
            args=(target, index, self._stop),
            name=f"celeriac-child-{index}",
            daemon=False,
        )
        child.start()
        return child

    def start(self, targets: SlotTargets, concurrency: int) -> None:
        self._slots.start(targets.run_slot, concurrency)

    def supervise(self) -> None:
        for index, child in self._slots.replace_ended():
            child.join()
            if child.exitcode != 0:
                log.warning(
                    "child %d (pid %s) exited with %s; replaced it",
                    index,
                    child.pid,
                    child.exitcode,
                )

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for child in self._children.values():
            child.join(max(0.0, deadline - time.monotonic()))
        return self.alive() == 0

    def kill(self) -> None:
        self._stop.set()
        for child in self._children.values():
            if child.is_alive():
                child.kill()
        for child in self._children.values():
            child.join(5)

    def alive(self) -> int:
        return self._slots.alive()

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        # A child cannot be trusted to stop; it is killed and replaced. What the run
        # becomes is recorded in Redis first, by the worker, so the replacement skips it.
        child = self._children.get(index)
        if child is not None and child.is_alive():
            child.kill()

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        """SIGALRM in the child, whose slot runs in its main thread."""

        def expire(signum: int, frame: FrameType | None) -> None:
            error = exc(f"soft time limit ({seconds}s) exceeded")
            # An async run is cancelled on its loop, which survives that (and would not
            # survive an exception raised in the middle of its own code).
            if self.run_async.cancel(threading.get_ident(), error) is None:
                raise error

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
