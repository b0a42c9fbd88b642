"""A token bucket: how many webhook attempts a gateway process may start, and when.

``rate`` tokens a second drip into a bucket that holds at most ``burst``; starting an
attempt takes one. An idle dispatcher starts a small burst at once; a backlog, however
large, is worked off at ``rate`` a second in batches of ``burst``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def wait(self, n: int) -> float:
        """Seconds until ``n`` tokens (at most ``burst``) are in the bucket; 0 when they are."""
        missing = min(n, self.burst) - self._refill()
        return max(missing / self.rate, 0.0)

    def take(self, n: int) -> None:
        """Spend ``n`` tokens (the bucket may go below empty: the next wait is longer)."""
        self._refill()
        self._tokens -= n
