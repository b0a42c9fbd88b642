"""A delay that doubles while something keeps failing: reconnecting, restarting a slot."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from executors.pools.base import StopFlag


class Backoff:
    """``first`` seconds, doubling at each ``sleep`` up to ``most``; ``reset`` after a
    success."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def sleep(self, stop: StopFlag | None = None) -> bool:
        """Wait the current delay, or less if ``stop`` is set first; then double it.
        True if ``stop`` ended the wait."""
        deadline = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, self.most)
        while not (stop and stop.is_set()):
            if (left := deadline - time.monotonic()) <= 0:
                return False
            time.sleep(min(0.05, left))
        return True

    async def asleep(self, stop: asyncio.Event | None = None) -> bool:
        """``sleep`` on an event loop: the other coroutines run meanwhile."""
        delay, self.delay = self.delay, min(self.delay * 2, self.most)
        if stop is None:
            await asyncio.sleep(delay)
            return False
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
        return True
