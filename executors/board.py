"""What each slot is running, in shared memory the worker's main process can read.

The main process enforces hard time limits and terminates revoked runs from it, for
pools whose slots are processes as much as for threads.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time

_ID_BYTES = 128


class SlotBoard:
    def __init__(self, slots: int) -> None:
        self._ids = [multiprocessing.Array(ctypes.c_char, _ID_BYTES) for _ in range(slots)]
        # Read and written only under the slot's id lock, so it needs no lock of its own.
        self._deadlines = multiprocessing.Array(ctypes.c_double, slots, lock=False)

    def running(self, index: int, run_id: str, hard_limit: float | None) -> None:
        """Slot ``index`` starts ``run_id``; it must end within ``hard_limit`` seconds."""
        with self._ids[index].get_lock():
            self._ids[index].value = run_id.encode()[: _ID_BYTES - 1]
            self._deadlines[index] = time.time() + hard_limit if hard_limit else 0.0

    def idle(self, index: int) -> None:
        with self._ids[index].get_lock():
            self._ids[index].value = b""
            self._deadlines[index] = 0.0

    def run_of(self, index: int) -> str | None:
        with self._ids[index].get_lock():
            value: bytes = self._ids[index].value
        return value.decode() or None

    def slot_of(self, run_id: str) -> int | None:
        wanted = run_id.encode()[: _ID_BYTES - 1]
        for index, cell in enumerate(self._ids):
            with cell.get_lock():
                if cell.value == wanted:
                    return index
        return None

    def overdue(self, now: float | None = None) -> list[tuple[int, str]]:
        """Slots past their hard time limit, with the run each is stuck in."""
        now = time.time() if now is None else now
        late = []
        for index, cell in enumerate(self._ids):
            with cell.get_lock():
                deadline = self._deadlines[index]
                if deadline and deadline < now and cell.value:
                    late.append((index, cell.value.decode()))
        return late
