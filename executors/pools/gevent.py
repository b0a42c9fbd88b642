"""Slots as greenlets in one process, for I/O-bound tasks at high concurrency.

Importing this module monkey-patches the standard library (sockets, threads, sleep), so
the worker CLI resolves the pool before it imports the user's tasks. Hard time limits
and terminate raise inside the greenlet; a task stuck in C code cannot be interrupted.

``async def`` tasks run in real threads, each on a loop of its own: asyncio allows one
running loop per OS thread, and every greenlet shares the worker's one thread, so loops
run inside the greenlets failed as soon as two runs overlapped ("asyncio.run() cannot be
called from a running event loop"). The greenlet waits for its run cooperatively; an
exception raised into it (a time limit, terminate) cancels the run's task first.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import asyncio  # noqa: E402
from collections.abc import Awaitable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.threadpool  # noqa: E402

from executors.pools.base import (  # noqa: E402
    Slots,
    SlotTarget,
    SlotTargets,
    cancel_threadsafe,
    run_logged,
)


class GeventPool:
    name: ClassVar[str] = "gevent"

    def __init__(self) -> None:
        self._stop = gevent.event.Event()
        self._slots: Slots[gevent.Greenlet] = Slots(self._spawn, lambda g: g.dead, self._stop)
        self._threads: gevent.threadpool.ThreadPool | None = None  # for async runs

    def _spawn(self, target: SlotTarget, index: int) -> gevent.Greenlet:
        return gevent.spawn(run_logged, target, index, self._stop)

    def start(self, targets: SlotTargets, concurrency: int) -> None:
        self._threads = gevent.threadpool.ThreadPool(maxsize=concurrency)
        self._slots.start(targets.run_slot, concurrency)

    def supervise(self) -> None:
        self._slots.replace_ended()

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        gevent.joinall(list(self._slots.handles.values()), timeout=timeout)
        return self.alive() == 0

    def kill(self) -> None:
        self._stop.set()
        gevent.killall(list(self._slots.handles.values()), block=True, timeout=5)

    def alive(self) -> int:
        return self._slots.alive()

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        slot = self._slots.handles.get(index)
        if slot is not None and not slot.dead:
            slot.kill(exc, block=False)  # raised inside the greenlet, at its next switch

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        with gevent.Timeout(seconds, exc(f"soft time limit ({seconds}s) exceeded")):
            yield

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """In a slot: the run's result, from a loop in a thread of the pool's own."""
        assert self._threads is not None, "the pool has not started"
        run = _ThreadRun(awaitable)
        try:
            ok, outcome = self._threads.spawn(run).get()
        except BaseException:  # raised into this greenlet: a time limit, terminate
            run.cancel()
            raise
        if not ok:
            raise outcome
        return outcome


class _ThreadRun:
    """One async run on a loop of its own, in whatever thread calls it."""

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self._awaitable = awaitable
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def __call__(self) -> tuple[bool, Any]:
        # The outcome, raised or not, is handed to the greenlet: gevent's pool would print
        # the traceback of an exception that left a thread.
        try:
            return True, asyncio.run(self._main())
        except BaseException as exc:
            return False, exc

    async def _main(self) -> Any:
        self._task = asyncio.current_task()
        if self._cancelled:  # before it started: checked after the task is published
            raise asyncio.CancelledError
        return await self._awaitable

    def cancel(self) -> None:
        """From the greenlet: stop the run in its thread (its result is not awaited)."""
        self._cancelled = True
        if self._task is not None:
            cancel_threadsafe(self._task)
