"""``async def`` tasks on one shared event loop; sync tasks run in their slot's thread.

Every coroutine of the worker runs on the same loop (in its own thread), so async tasks
can share clients and sessions; each slot is a thread that consumes from Redis like the
threads pool and hands its run's coroutine to the loop. Soft time limits and terminate
cancel the coroutine (the task sees ``CancelledError`` at its next ``await``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from executors.pools.base import SlotTarget
from executors.pools.threads import ThreadPool


class AsyncioPool:
    name: ClassVar[str] = "asyncio"

    def __init__(self) -> None:
        self._slots = ThreadPool()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="asyncio-loop", daemon=True
        )
        self._local = threading.local()  # the slot's current future and the exception to raise
        self._running: dict[int, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()

    # -- slots: the threads pool does the consuming ----------------------------------------------
    def start(self, target: SlotTarget, concurrency: int) -> None:
        self._loop_thread.start()

        def slot(index: int, stop: Any) -> None:
            self._local.index = index
            target(index, stop)

        self._slots.start(slot, concurrency)

    def supervise(self) -> None:
        self._slots.supervise()

    def stop(self, timeout: float) -> bool:
        clean = self._slots.stop(timeout)
        if clean:
            self._loop.call_soon_threadsafe(self._loop.stop)
        return clean

    def kill(self) -> None:
        self._slots.kill()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def alive(self) -> int:
        return self._slots.alive()

    # -- running coroutines on the shared loop ---------------------------------------------------
    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop)
        index = getattr(self._local, "index", -1)
        with self._lock:
            self._running[index] = future
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise getattr(future, "celeriac_exc", asyncio.CancelledError)() from None
        finally:
            with self._lock:
                self._running.pop(index, None)

    def _cancel(self, index: int, exc: type[BaseException]) -> bool:
        with self._lock:
            future = self._running.get(index)
        if future is None:
            return False
        future.celeriac_exc = exc  # type: ignore[attr-defined]
        future.cancel()
        return True

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        if not self._cancel(index, exc):  # a sync task: as in the threads pool
            self._slots.terminate(index, exc)

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        index = getattr(self._local, "index", -1)
        timer = threading.Timer(seconds, self.terminate, (index, exc))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
