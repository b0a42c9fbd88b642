"""Round-trip latency: submit one run, wait for its result, one after the other."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loadtests.peers import Peer, expected
from loadtests.procs import BenchError, Procs, tail


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_trips(trip: Callable[[], Any], kind: str, n: int, warm_up: int) -> list[float]:
    """Milliseconds of each of ``n`` sequential round trips, after ``warm_up`` untimed ones."""
    want = expected(kind)
    for _ in range(warm_up):
        trip()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        got = trip()
        out.append((time.perf_counter() - t0) * 1000)
        if got != want:
            raise BenchError(f"a round trip returned {str(got)[:60]!r}")
    return out


def measure(
    procs: Procs, peer: Peer, kind: str, n: int, warm_up: int, gateway_url: str | None
) -> dict[str, tuple[float, float]]:
    """(p50, p99) in ms per round-trip path, with one worker of the peer's usual pool."""
    pool = peer.pools[0]
    proc = procs.spawn(f"{peer.name} {pool} latency", peer.worker_command(pool))
    out = {}
    try:
        for label, trip in peer.round_trips(kind, gateway_url).items():
            times = time_trips(trip, kind, n, warm_up)
            out[label] = (percentile(times, 0.5), percentile(times, 0.99))
    except Exception as exc:
        raise BenchError(f"{peer.name} latency: {exc!r}{tail(procs.log(proc))}") from exc
    finally:
        procs.stop(proc)
    return out
