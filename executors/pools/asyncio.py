"""Every slot a coroutine on one event loop: ``-c 1000`` is a thousand coroutines, not a
thousand threads.

The loop runs in a thread of its own and runs the worker's async consumer
(``executors/async_consumer.py``): one fetcher and ``-c`` slot coroutines sharing one
connection pool, their script calls coalesced into pipelines. ``async def`` tasks are
awaited on the loop, so they can share clients and sessions; a sync task runs in a thread
of a pool made the first time one comes, as under the threads pool.

Terminate and time limits cancel an async run (the task sees ``CancelledError`` at its
next ``await``; the run then ends with the limit's exception). A run that never awaits
cannot be cancelled, and it also keeps the loop from running anything else: a second
later it gets the exception raised in the loop's thread, as the threads pool does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from executors.backoff import Backoff
from executors.pools.base import SlotTargets
from executors.pools.threads import ESCALATE_AFTER_S, raise_in_thread

log = logging.getLogger("celeriac.pool.asyncio")
_slot_index: contextvars.ContextVar[int] = contextvars.ContextVar("celeriac_slot", default=-1)


class AsyncioPool:
    name: ClassVar[str] = "asyncio"

    def __init__(self) -> None:
        self._alarms = Alarms()
        self._slots = _LoopSlots(self._alarms)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = threading.Event()

    # -- the loop's life -------------------------------------------------------------------------
    def start(self, targets: SlotTargets, concurrency: int) -> None:
        self._slots.threads = concurrency
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(targets, concurrency, ready), name="asyncio-loop", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def _serve(self, targets: SlotTargets, concurrency: int, ready: threading.Event) -> None:
        """The loop thread: run every slot; should that ever crash, start over."""
        loop = self._loop = asyncio.new_event_loop()
        self._slots.loop_thread = threading.get_ident()
        backoff = Backoff(0.5, 30.0)
        try:
            while not self._stopping.is_set():
                try:
                    loop.run_until_complete(self._main(targets, concurrency, ready))
                    return
                except Exception:
                    if self._stopping.is_set():  # killed: the loop was stopped under it
                        return
                    log.exception("the asyncio slots crashed; they start again")
                if backoff.sleep(self._stopping):
                    return
        finally:
            self._slots.close()

    async def _main(self, targets: SlotTargets, concurrency: int, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        if self._stopping.is_set():
            self._stop.set()
        ready.set()
        await targets.run_slots(concurrency, self._stop, self._slots)

    def supervise(self) -> None:
        """Nothing to do: the slots restart themselves inside the loop (see ``_serve``)."""

    def stop(self, timeout: float) -> bool:
        self._stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        return self.alive() == 0

    def kill(self) -> None:
        # The loop thread is a daemon and dies with the process; unfinished runs stay
        # pending, for the next life of this worker or another one.
        self._stopping.set()
        if self._loop is not None and not self._loop.is_closed():
            with suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)

    def alive(self) -> int:
        if self._thread is None or not self._thread.is_alive():
            return 0
        return self._slots.active

    # -- stopping runs -----------------------------------------------------------------------
    def terminate(self, index: int, exc: type[BaseException]) -> None:
        self._slots.terminate(index, exc)

    def interrupter(self, seconds: float, exc: type[BaseException]) -> Any:
        return self._slots.interrupter(seconds, exc)

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """From a sync task's thread: an awaitable it returned, run on the pool's loop."""
        assert self._loop is not None, "the pool has not started"
        return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop).result()


class _LoopSlots:
    """The pool's side of each slot (``LoopSlots``): which run each slot is in, so that
    terminate and time limits reach that run and nothing else."""

    def __init__(self, alarms: Alarms) -> None:
        self.active = 0
        self.threads = 1  # most threads for sync tasks
        self.loop_thread = 0
        self._alarms = alarms
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        # by slot index, while it runs one: the async run's task, or the sync run's thread
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._idents: dict[int, int] = {}
        self._cancelled: dict[int, BaseException | type[BaseException]] = {}
        self._runs: dict[int, int] = {}  # runs started by each slot, so an alarm hits its own
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, index: int) -> Iterator[None]:
        token = _slot_index.set(index)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            _slot_index.reset(token)

    async def await_run(self, awaitable: Awaitable[Any]) -> Any:
        index = _slot_index.get()
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._cancelled.pop(index, None)
            self._runs[index] = self._runs.get(index, 0) + 1
            self._tasks[index] = task
        try:
            return await awaitable
        except asyncio.CancelledError:
            with self._lock:
                exc = self._cancelled.pop(index, None)
            if exc is None:  # the worker itself is being cancelled
                raise
            task.uncancel()
            raise exc from None
        finally:
            with self._lock:
                del self._tasks[index]
                if task.cancelling():  # a cancel the run swallowed
                    task.uncancel()

    async def call_in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        index = _slot_index.get()

        def tracked() -> Any:
            with self._lock:
                self._runs[index] = self._runs.get(index, 0) + 1
                self._idents[index] = threading.get_ident()
            try:
                return fn(*args)
            finally:
                with self._lock:
                    del self._idents[index]

        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix="sync-task"
            )
        context = contextvars.copy_context()  # the slot's index goes with the run
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, context.run, tracked)

    def terminate(self, index: int, exc: type[BaseException], run: int | None = None) -> None:
        """Stop slot ``index``'s run (run number ``run``, when given); from any thread."""
        message = exc if run is None else exc("soft time limit exceeded")
        with self._lock:
            if run is not None and self._runs.get(index) != run:
                return  # that run is over
            task, ident = self._tasks.get(index), self._idents.get(index)
            if task is not None:
                self._cancelled[index] = message
            number = self._runs.get(index)
        if ident is not None:
            raise_in_thread(ident, exc)
        elif task is not None:
            try:
                task.get_loop().call_soon_threadsafe(self._cancel, index, task)
            except RuntimeError:  # the loop has closed: the run is over
                return
            self._alarms.after(ESCALATE_AFTER_S, lambda: self._escalate(index, task, number, exc))

    def _cancel(self, index: int, task: asyncio.Task[Any]) -> None:
        """On the loop: cancel the run's task if it still runs that run."""
        with self._lock:
            if self._tasks.get(index) is task:
                task.cancel()

    def _escalate(
        self, index: int, task: asyncio.Task[Any], run: int | None, exc: type[BaseException]
    ) -> None:
        """A cancelled run still running a second later never awaits: raise ``exc`` in the
        loop's thread, where that run is the code running."""
        with self._lock:
            still = self._tasks.get(index) is task and self._runs.get(index) == run
        if still and self.loop_thread:
            raise_in_thread(self.loop_thread, exc)

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        index = _slot_index.get()
        with self._lock:
            run = self._runs.get(index, 0) + (0 if index in self._idents else 1)
        alarm = self._alarms.after(seconds, lambda: self.terminate(index, exc, run))
        try:
            yield
        finally:
            self._alarms.cancel(alarm)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class Alarms:
    """Callbacks due at a time, run by one thread: soft time limits must fire even while
    a run that never awaits holds the loop, and a thread per limit would cost a thread per
    run."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._numbers = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, callback: Callable[[], None]) -> int:
        number = next(self._numbers)
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + seconds, number, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alarms", daemon=True)
                self._thread.start()
            self._wake.notify()
        return number

    def cancel(self, number: int) -> None:
        with self._wake:
            self._cancelled.add(number)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, number, callback = heapq.heappop(self._due)
                if number in self._cancelled:
                    self._cancelled.discard(number)
                    continue
            try:
                callback()
            except Exception:
                log.exception("an alarm failed")


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
