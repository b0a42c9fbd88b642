"""The asyncio consumer's inbox: runs fetched for the slots, and the slots waiting for one.

Like an ``asyncio.Queue`` with two differences the consumer needs. A run put while slots
wait goes straight to the first of them, so ``waiting`` counts only the slots that
still have nothing (the fetcher reads that many runs, plus its margin). And the slots
waiting while they hold an outcome can be woken alone, to send it
(``Signal.SEND_HELD``), without another slot taking their wake-up.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Signal(enum.Enum):
    """What a waiting slot may get instead of a run."""

    CLOSED = "the worker stops"
    SEND_HELD = "no run is on its way: store the outcome you hold"


class Inbox(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiters: deque[tuple[asyncio.Future[T | Signal], bool]] = deque()
        self.waiting = 0  # slots waiting, not yet handed anything
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, first: bool = False) -> None:
        """To the first waiting slot, else into the inbox (at its head if ``first``)."""
        while self._waiters:
            future, _holding = self._waiters.popleft()
            if not future.done():  # else its slot was cancelled
                self.waiting -= 1
                future.set_result(item)
                return
        if first:
            self._items.appendleft(item)
        else:
            self._items.append(item)

    def get_nowait(self) -> T | None:
        return self._items.popleft() if self._items else None

    async def get(self, holding: bool = False) -> T | Signal:
        """The next run; a slot ``holding`` an outcome may get ``SEND_HELD`` instead."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            return Signal.CLOSED
        future: asyncio.Future[T | Signal] = asyncio.get_running_loop().create_future()
        self._waiters.append((future, holding))
        self.waiting += 1
        try:
            return await future
        except asyncio.CancelledError:
            if future.cancelled():
                self.waiting -= 1  # cancelled while it waited
            elif not isinstance(item := future.result(), Signal):
                self.put(item, first=True)  # handed a run as it was cancelled: not lost
            raise

    def release_holders(self) -> None:
        """Wake the waiting slots that hold an outcome, with ``SEND_HELD``."""
        kept: deque[tuple[asyncio.Future[T | Signal], bool]] = deque()
        for future, holding in self._waiters:
            if future.done():
                continue
            if holding:
                self.waiting -= 1
                future.set_result(Signal.SEND_HELD)
            else:
                kept.append((future, holding))
        self._waiters = kept

    def close(self) -> list[T]:
        """Wake every waiting slot with ``CLOSED`` (and answer later gets so); returns
        the runs no slot took."""
        self._closed = True
        left, self._items = list(self._items), deque()
        for future, _holding in self._waiters:
            if not future.done():
                future.set_result(Signal.CLOSED)
        self._waiters.clear()
        self.waiting = 0
        return left


__all__ = ["Inbox", "Signal"]
