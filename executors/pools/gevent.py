"""Slots as greenlets in one process, for I/O-bound tasks at high concurrency.

Importing this module monkey-patches the standard library (sockets, threads, sleep), so
the worker CLI resolves the pool before it imports the user's tasks. Hard time limits
and terminate raise inside the greenlet; a task stuck in C code cannot be interrupted.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402 - after patching, by design
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import ClassVar  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from executors.pools.base import SlotTarget, run_in_new_loop  # noqa: E402

log = logging.getLogger("celeriac.pool.gevent")


class GeventPool:
    name: ClassVar[str] = "gevent"
    run_async = staticmethod(run_in_new_loop)

    def __init__(self) -> None:
        self._stop = gevent.event.Event()
        self._slots: dict[int, gevent.Greenlet] = {}
        self._target: SlotTarget | None = None

    def _run(self, target: SlotTarget, index: int) -> None:
        try:
            target(index, self._stop)
        except Exception:
            log.exception("slot %d crashed; it will be replaced", index)

    def _spawn(self, index: int) -> None:
        assert self._target is not None
        self._slots[index] = gevent.spawn(self._run, self._target, index)

    def start(self, target: SlotTarget, concurrency: int) -> None:
        self._target = target
        for index in range(concurrency):
            self._spawn(index)

    def supervise(self) -> None:
        if self._stop.is_set():
            return
        for index, slot in list(self._slots.items()):
            if slot.dead:
                self._spawn(index)

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        gevent.joinall(list(self._slots.values()), timeout=timeout)
        return self.alive() == 0

    def kill(self) -> None:
        self._stop.set()
        gevent.killall(list(self._slots.values()), block=True, timeout=5)

    def alive(self) -> int:
        return sum(not s.dead for s in self._slots.values())

    def terminate(self, index: int, exc: type[BaseException]) -> None:
        slot = self._slots.get(index)
        if slot is not None and not slot.dead:
            slot.kill(exc, block=False)  # raised inside the greenlet, at its next switch

    @contextmanager
    def interrupter(self, seconds: float, exc: type[BaseException]) -> Iterator[None]:
        with gevent.Timeout(seconds, exc(f"soft time limit ({seconds}s) exceeded")):
            yield
