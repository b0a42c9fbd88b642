"""When to try a webhook again: exponential backoff with jitter over a bounded span.

The delay after failed attempt ``n`` is ``backoff * factor**(n-1)``, times a jitter of
±25%. ``factor`` is solved so that the ``max_attempts - 1`` delays add up to ``max_span``:
with the defaults (5 s, 10 attempts, 3 days) it is about 3.7, so the attempts come at
roughly 0 s, 5 s, 24 s, 1.5 min, 5.8 min, 22 min, 1.4 h, 5 h, 19 h and 3 days. When the
span is too short for even a constant ``backoff`` the factor is 1. No attempt is made
past the span: the last is moved to its end. A ``Retry-After`` answer (429/503) is
honoured: the next attempt waits at least that long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

JITTER = 0.25
MAX_FACTOR = 1_000.0


def _total(backoff: float, factor: float, delays: int, cap: float) -> float:
    """The sum of the delays, or just past ``cap`` once it passes it (no overflow)."""
    total, delay = 0.0, backoff
    for _ in range(delays):
        total += delay
        if total > cap:
            break
        delay *= factor
    return total


def solve_factor(backoff: float, attempts: int, span: float) -> float:
    """The growth factor that spreads ``attempts`` over ``span`` seconds (at least 1)."""
    delays = attempts - 1
    if delays <= 0 or backoff <= 0 or _total(backoff, 1.0, delays, span) >= span:
        return 1.0
    low, high = 1.0, MAX_FACTOR
    for _ in range(100):
        mid = (low + high) / 2
        if _total(backoff, mid, delays, span) < span:
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True)
class Schedule:
    backoff: float = 5.0
    max_attempts: int = 10
    max_span: float = 3 * 86_400.0
    factor: float = field(init=False)

    def __post_init__(self) -> None:
        factor = solve_factor(self.backoff, self.max_attempts, self.max_span)
        object.__setattr__(self, "factor", factor)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = self.backoff * self.factor ** (attempt - 1)  # <= span / backoff, by the factor
        jittered = base * random.uniform(1 - JITTER, 1 + JITTER)
        return max(jittered, retry_after or 0.0)

    def next_at(
        self, attempt: int, first_at_ms: int, now_ms: int, retry_after: float | None
    ) -> int | None:
        """When to make attempt ``attempt + 1`` (ms), or None when there is none left."""
        end = first_at_ms + int(self.max_span * 1000)
        if attempt >= self.max_attempts or now_ms >= end:
            return None
        return min(now_ms + int(self.delay(attempt, retry_after) * 1000), end)
