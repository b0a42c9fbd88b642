"""Slots as greenlets in one process, for I/O-bound tasks at high concurrency.

Importing this module monkey-patches the standard library (sockets, threads, sleep), so
the worker CLI resolves the pool before it imports the user's tasks. Hard time limits
and terminate raise inside the greenlet; a task stuck in C code cannot be interrupted.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import ClassVar  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from executors.pools.base import Slots, SlotTarget, run_in_new_loop, run_logged  # noqa: E402


class GeventPool:
    name: ClassVar[str] = "gevent"
    run_async = staticmethod(run_in_new_loop)

    def __init__(self) -> None:
        self._stop = gevent.event.Event()
        self._slots: Slots[gevent.Greenlet] = Slots(self._spawn, lambda g: g.dead, self._stop)

    def _spawn(self, target: SlotTarget, index: int) -> gevent.Greenlet:
        return gevent.spawn(run_logged, target, index, self._stop)

    def start(self, target: SlotTarget, concurrency: int) -> None:
        self._slots.start(target, concurrency)

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
