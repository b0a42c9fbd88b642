"""The pool interface: where a worker's execution slots live (processes, threads, ...).

All branching on the kind of pool lives inside the pools; the worker only calls these
methods. The worker hands a pool both ways to consume (``SlotTargets``): a slot that
blocks (a thread, a child process, a greenlet) or every slot as a coroutine on one
event loop; each pool runs the one it is built for. A third-party pool is one class
registered in the ``celeriac.pools`` group.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from executors.backoff import Backoff

if TYPE_CHECKING:
    import redis

    from sdk.app import App
    from sdk.protocol.keys import Keys
    from sdk.task import Task

log = logging.getLogger("celeriac.pool")


class StopFlag(Protocol):
    """Set when a slot should stop fetching (threading/multiprocessing/gevent events)."""

    def is_set(self) -> bool: ...


#: Runs execution slot ``index`` until ``stop`` is set (or the slot retires).
SlotTarget = Callable[[int, StopFlag], None]


class LoopSlots(Protocol):
    """What a pool whose slots are coroutines on one loop offers them (the asyncio pool)."""

    def slot(self, index: int) -> AbstractContextManager[None]:
        """Around a slot coroutine's life: the current task is slot ``index``."""

    async def await_run(self, awaitable: Awaitable[Any]) -> Any:
        """In a slot: await an async task's run so terminate and time limits can cancel it."""

    async def call_in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """In a slot: run a sync task's run in a thread, where terminate can reach it."""


class SlotTargets(Protocol):
    """What the worker hands its pool: how to run one blocking slot, and how to run every
    slot as a coroutine on one loop."""

    def run_slot(self, index: int, stop: StopFlag) -> None:
        """Consume in slot ``index`` until ``stop`` is set (or the slot retires)."""

    async def run_slots(self, concurrency: int, stop: asyncio.Event, slots: LoopSlots) -> None:
        """Consume with ``concurrency`` coroutine slots until ``stop`` is set."""


class TaskSource(Protocol):
    """Tasks a pool brings besides the app's (the http pool's: the catalog's HTTP tasks)."""

    def get(self, name: str) -> Task[Any, Any] | None: ...

    def names(self) -> list[str]:
        """Their names, as the worker's heartbeat lists them."""

    def refresh(self) -> None:
        """Re-read them (the worker calls it every second, from its main loop)."""


@runtime_checkable
class TaskSourcePool(Protocol):
    """A pool whose runs may be of tasks no Python module defines."""

    def task_source(
        self, app: App, client: redis.Redis, keys: Keys, concurrency: int
    ) -> TaskSource: ...


class Pool(Protocol):
    name: ClassVar[str]

    def start(self, targets: SlotTargets, concurrency: int) -> None:
        """Start ``concurrency`` slots, each running what ``targets`` offers for its kind."""

    def supervise(self) -> None:
        """Replace slots that ended (crashed, retired) unless the pool is stopping."""

    def stop(self, timeout: float) -> bool:
        """Warm stop: ask slots to finish their current run; True if all ended in time."""

    def kill(self) -> None:
        """Cold stop: end every slot now; unfinished runs stay pending and run again."""

    def alive(self) -> int:
        """How many slots are running."""

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        """Stop slot ``index``'s current run now: kill its process, or raise ``exc`` in it."""

    def interrupter(self, seconds: float, exc: type[BaseException]) -> AbstractContextManager[None]:
        """Inside a slot: raise ``exc`` in the running task if the block lasts ``seconds``."""

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """Inside a slot: the result of an ``async def`` task's awaitable."""


H = TypeVar("H")


class Slots(Generic[H]):
    """Slot bookkeeping shared by the pools: start slots running the target, and replace
    the ones that ended (crashed, retired) unless the pool is stopping."""

    def __init__(
        self, spawn: Callable[[SlotTarget, int], H], ended: Callable[[H], bool], stop: StopFlag
    ) -> None:
        self.handles: dict[int, H] = {}
        self._spawn = spawn
        self._ended = ended
        self._stop = stop
        self._target: SlotTarget | None = None

    def start(self, target: SlotTarget, concurrency: int) -> None:
        self._target = target
        for index in range(concurrency):
            self.handles[index] = self._spawn(target, index)

    def replace_ended(self) -> list[tuple[int, H]]:
        """Respawn ended slots; returns the (index, old handle) of each one replaced."""
        if self._stop.is_set() or self._target is None:
            return []
        replaced = [(i, h) for i, h in self.handles.items() if self._ended(h)]
        for index, _ in replaced:
            self.handles[index] = self._spawn(self._target, index)
        return replaced

    def alive(self) -> int:
        return sum(not self._ended(h) for h in self.handles.values())


def run_logged(
    target: SlotTarget, index: int, stop: StopFlag, pause: float = 0.5, max_pause: float = 30.0
) -> bool:
    """Run a slot; a crash is logged and the slot starts over in the same thread or child.

    The pause before each new start doubles while the slot keeps crashing soon after it
    starts, so a fault that persists (Redis out of memory, a key of the wrong type) is a
    traceback every half minute, not ten a second. True if the slot ended cleanly.
    """
    backoff = Backoff(pause, max_pause)
    while True:
        started = time.monotonic()
        try:
            target(index, stop)
            return True
        except Exception:
            if time.monotonic() - started > max_pause:  # it had worked for a while
                backoff.reset()
            log.exception("slot %d crashed; it starts again in %.1fs", index, backoff.delay)
        if backoff.sleep(stop):
            return False


def run_in_new_loop(awaitable: Awaitable[Any]) -> Any:
    """``run_async`` for pools without a loop of their own: a fresh loop per run."""
    return asyncio.run(_as_coroutine(awaitable))


class SlotLoops:
    """``run_async`` for pools whose slots are threads or processes: each slot keeps one
    event loop from run to run (``asyncio.Runner``).

    A fresh loop per run cost a socket pair, a selector and a shutdown each time (a prefork
    slot ran 7,400 no-op async runs a second that way), and broke the async clients a
    task module keeps between runs, which stay bound to the loop they first ran on.
    ``cancel`` stops a thread's run the way the asyncio pool does (the task sees
    ``CancelledError`` at its ``await``) and keeps the loop. A run interrupted some other
    way (an exception raised in the loop's own code) may leave work pending on its loop,
    so the next run gets a new one.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        # by thread ident: its run's task while one runs, and what a cancelled one raises
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._cancelled: dict[int, BaseException | type[BaseException]] = {}

    def __call__(self, awaitable: Awaitable[Any]) -> Any:
        ident = threading.get_ident()
        runner: asyncio.Runner | None = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
        self._cancelled.pop(ident, None)
        try:
            return runner.run(self._tracked(ident, awaitable))
        except asyncio.CancelledError:
            exc = self._cancelled.pop(ident, None)
            if exc is None:
                raise
            raise exc from None
        except BaseException:
            if asyncio.all_tasks(runner.get_loop()):  # interrupted mid-loop, not failed
                self.close()
            raise

    async def _tracked(self, ident: int, awaitable: Awaitable[Any]) -> Any:
        task = asyncio.current_task()
        assert task is not None  # runner.run runs us as a task
        self._tasks[ident] = task
        try:
            return await awaitable
        finally:
            del self._tasks[ident]

    def running(self, ident: int) -> asyncio.Task[Any] | None:
        """Thread ``ident``'s async run, while there is one."""
        return self._tasks.get(ident)

    def cancel(
        self, ident: int, exc: BaseException | type[BaseException]
    ) -> asyncio.Task[Any] | None:
        """Cancel thread ``ident``'s async run, which then raises ``exc``: the run's task,
        or None when the thread runs none (it runs sync code, or nothing). Safe from a
        signal handler."""
        task = self._tasks.get(ident)
        if task is None:
            return None
        self._cancelled[ident] = exc
        return task if cancel_threadsafe(task) else None

    def close(self) -> None:
        """In the slot, as it ends: close its loop, cancelling what its runs left behind."""
        runner: asyncio.Runner | None = getattr(self._local, "runner", None)
        if runner is not None:
            self._local.runner = None
            runner.close()


def cancel_threadsafe(task: asyncio.Task[Any]) -> bool:
    """Cancel ``task`` from another thread, or a signal handler; False if its loop has
    closed (the run is over)."""
    try:
        task.get_loop().call_soon_threadsafe(task.cancel)
    except RuntimeError:
        return False
    return True


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
