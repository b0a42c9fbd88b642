"""Run ids and times as the protocol writes them: UUIDv7 ids, ms since the epoch, RFC 3339."""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, datetime

from sdk.errors import InvalidRequest


def new_id() -> str:
    """A UUIDv7: time-ordered, so ids sort by submission time."""
    raw = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an RFC 3339 UTC string (``...T15:04:05.123Z``)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return f"{_utc_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=1024)
def _utc_second(seconds: int) -> str:
    # Cached: a run's times, and the runs answered together, mostly share their second;
    # formatting was a tenth of the gateway's CPU on a burst of long-poll answers.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def parse_time(value: str) -> int:
    """An ISO 8601 / RFC 3339 time as ms since the epoch; naive times are UTC."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"not an ISO 8601 time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
