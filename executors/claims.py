"""Keep the claims of a live worker fresh, so only runs of dead workers are reclaimed.

Slots reclaim (XAUTOCLAIM) any pending entry idle longer than the dead-worker time. A
live worker's runs must therefore never look that idle, however long they run: the
worker's main process resets their idle time with ``XCLAIM ... JUSTID``, which leaves
the delivery count alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sdk.clients import SyncClient
from sdk.protocol.keys import GROUP

REFRESH_EVERY_S = 3.0


def keep_fresh(
    client: SyncClient,
    streams: Sequence[str],
    worker_id: str,
    idle_ms: int = int(REFRESH_EVERY_S * 1000),
) -> int:
    """Reset the idle time of this worker's pending entries idle over ``idle_ms``."""
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xpending_range(stream, GROUP, min="-", max="+", count=10_000, idle=idle_ms)
    prefix = f"{worker_id}.".encode()
    refresh = client.pipeline(transaction=False)
    count = 0
    for stream, rows in zip(streams, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(rows, Exception):  # NOGROUP: purged meanwhile
            continue
        mine: dict[bytes, list[int | bytes | str | memoryview[int]]] = defaultdict(list)
        for row in rows:
            if row["consumer"].startswith(prefix):
                mine[row["consumer"]].append(row["message_id"])
        for consumer, ids in mine.items():
            refresh.xclaim(stream, GROUP, consumer.decode(), 0, ids, justid=True)
            count += len(ids)
    if count:
        refresh.execute()
    return count
