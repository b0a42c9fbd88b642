"""Enqueue N runs with no worker up, then start the worker and time the drain.

One experiment per (system, pool, task) gives: the enqueue rate one run at a time, the
drain throughput (from the worker's start until all N results are stored), the worker
tree's memory after the drain, and Redis commands per run on each side (commandstats
deltas: producer while enqueueing, worker while draining).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from loadtests.peers import Peer, Probe, expected
from loadtests.procs import BenchError, Procs, tail, tree_memory
from loadtests.redisstats import calls, delta

_CHUNK = 1000  # probes per pipeline


@dataclass
class Drain:
    enqueue_s: float
    first_s: float  # worker start to the first result stored (start-up, mostly)
    drain_s: float  # worker start to the last result stored
    rss: int
    pss: int
    producer: Counter[str]  # commands while enqueueing
    worker: Counter[str]  # commands while draining, less the harness's probes


class Waiter:
    """Tells when every run's result is stored, cheaply: runs finish roughly in queue
    order, so it watches one run at a time and reads them all only when the last is done."""

    def __init__(self, client: redis.Redis, probes: Sequence[Probe], peer: Peer) -> None:
        self.client = client
        self.probes = list(probes)
        self.peer = peer
        self.sent: Counter[str] = Counter()  # the harness's own commands, by name

    def done(self, indexes: Sequence[int]) -> list[bool]:
        replies: list[Any] = []
        for start in range(0, len(indexes), _CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for i in indexes[start : start + _CHUNK]:
                pipe.execute_command(*self.probes[i])  # type: ignore[no-untyped-call]
            replies += pipe.execute()
        for i in indexes:
            self.sent[self.probes[i][0].lower()] += 1
        return [self.peer.is_done(r) for r in replies]

    def wait(self, started: float, timeout: float, alive: Any) -> tuple[float, float]:
        """(seconds to the first result, seconds to the last), both from ``started``."""
        deadline = started + timeout
        first = None
        remaining = list(range(len(self.probes)))
        while remaining:
            watch = [remaining[0]] if first is None else [remaining[-1]]
            if self.done(watch)[0]:
                if first is None:
                    first = time.perf_counter() - started
                    continue
                flags = self.done(remaining)
                remaining = [i for i, ok in zip(remaining, flags, strict=True) if not ok]
                continue
            if time.perf_counter() > deadline or not alive():
                raise BenchError(f"{len(remaining)} of {len(self.probes)} runs unfinished")
            time.sleep(0.01)
        return first or 0.0, time.perf_counter() - started


def enqueue(peer: Peer, pool: str, kind: str, n: int) -> tuple[list[Any], float]:
    send = peer.sender(kind, pool)
    t0 = time.perf_counter()
    handles = [send() for _ in range(n)]
    return handles, time.perf_counter() - t0


def enqueue_batches(peer: Peer, kind: str, n: int, size: int) -> float | None:
    """Seconds to queue ``n`` runs ``size`` at a time, or None without a batch path."""
    send = peer.batch_sender(kind, size)
    if send is None:
        return None
    t0 = time.perf_counter()
    for _ in range(max(1, n // size)):
        send()
    return time.perf_counter() - t0


def check(peer: Peer, kind: str, handles: Sequence[Any]) -> None:
    """Stored, and right: read a few results back as a user of that system would."""
    for handle in (handles[0], handles[len(handles) // 2], handles[-1]):
        got = peer.result(handle)
        if got != expected(kind):
            raise BenchError(f"{peer.name}: run {handle} stored {str(got)[:60]!r}")


def drain(
    client: redis.Redis,
    procs: Procs,
    peer: Peer,
    pool: str,
    kind: str,
    n: int,
    timeout: float,
) -> Drain:
    client.flushdb()
    before = calls(client)
    handles, enqueue_s = enqueue(peer, pool, kind, n)
    middle = calls(client)
    waiter = Waiter(client, peer.probes(handles), peer)
    started = time.perf_counter()
    proc = procs.spawn(f"{peer.name} {pool}", peer.worker_command(pool))
    try:
        first_s, drain_s = waiter.wait(started, timeout, lambda: proc.poll() is None)
    except BenchError as exc:
        raise BenchError(f"{peer.name} {pool} {kind}: {exc}{tail(procs.log(proc))}") from exc
    after = calls(client)
    rss, pss = tree_memory(proc.pid)
    procs.stop(proc)
    check(peer, kind, handles)
    return Drain(
        enqueue_s=enqueue_s,
        first_s=first_s,
        drain_s=drain_s,
        rss=rss,
        pss=pss,
        producer=delta(before, middle, Counter()),
        worker=delta(middle, after, waiter.sent),
    )
