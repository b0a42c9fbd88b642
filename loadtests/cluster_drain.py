"""The drain of ``bench``, on one server and on a local three-primary Redis Cluster.

For each backend and pool: N ``add(1, 2)`` runs are queued round-robin over Q queues
with no worker up (the SDK's direct path, in batches), then one worker consuming all Q
queues starts; runs/s from its start until every run is terminal. Then every run is
read back: a run not ``SUCCESS`` with the result 3 counts as lost. Both backends are
started here (the bundled Valkey, no persistence) and stopped at the end; the cluster
uses the default layout of 16 partitions, the single server its one.

    .venv/bin/python -m loadtests cluster-drain [--runs 20000] [--queues 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.peers.celeriac_peer import task_name, worker_command
from loadtests.procs import BenchError, Procs, tail, tree_memory
from sdk import App
from sdk.calls import Call, SendOptions
from sdk.clients import SyncClient, sync_client
from sdk.embedded import EmbeddedCluster, EmbeddedServer
from sdk.protocol import F_RESULT, F_STATE
from sdk.protocol.keys import Keys
from sdk.states import SUCCESS, TERMINAL

POOLS = ("threads -c 8", "prefork -c 2", "asyncio -c 50")
BACKENDS = ("single", "cluster")
_CHUNK = 1000  # calls per batch, reads per pipeline
_TERMINAL = {s.encode() for s in TERMINAL}


@dataclass
class Sample:
    backend: str
    pool: str
    runs: int
    drain_s: float
    lost: int
    rss: int


def queued(app: App, pool: str, runs: int, queues: int) -> list[str]:
    """Queue ``runs`` runs round-robin over ``queues`` queues; their ids."""
    name, ids = task_name("add", pool), []
    for start in range(0, runs, _CHUNK):
        calls = [
            Call(name, [1, 2], {}, SendOptions(queue=f"q{i % queues}"))
            for i in range(start, min(runs, start + _CHUNK))
        ]
        ids += [r.id for r in app.send_calls(calls)]
    return ids


def fields(client: SyncClient, keys: Keys, ids: Sequence[str], *names: str) -> list[Any]:
    """``HMGET`` of each run's record, a pipeline per chunk (split by node on a Cluster)."""
    replies: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        pipe = client.pipeline(transaction=False)
        for run_id in ids[start : start + _CHUNK]:
            pipe.hmget(keys.run(run_id), list(names))
        replies += pipe.execute()
    return replies


def wait_drained(
    client: SyncClient, keys: Keys, ids: Sequence[str], timeout: float, alive: Any
) -> None:
    """Return once every run is terminal. Runs finish roughly in the order they were
    queued, so the last few are watched until they are done, then all are read."""
    deadline = time.perf_counter() + timeout
    remaining = list(ids)
    while remaining:
        states = fields(client, keys, remaining[-64:], F_STATE)
        if all(s[0] in _TERMINAL for s in states):
            states = fields(client, keys, remaining, F_STATE)
            remaining = [r for r, s in zip(remaining, states, strict=True) if s[0] not in _TERMINAL]
            if not remaining:
                break
        if time.perf_counter() > deadline or not alive():
            raise BenchError(f"{len(remaining)} of {len(ids)} runs unfinished")
        time.sleep(0.01)


def lost(client: SyncClient, keys: Keys, ids: Sequence[str]) -> int:
    """Runs not stored as a success with the right result."""
    records = fields(client, keys, ids, F_STATE, F_RESULT)
    return sum(1 for state, result in records if state != SUCCESS.encode() or result != b"3")


def one(procs: Procs, url: str, backend: str, pool: str, args: argparse.Namespace) -> Sample:
    client = sync_client(url)
    client.flushall()
    app = App("bench", redis_url=url)
    keys = Keys.from_settings(app.conf)
    try:
        ids = queued(app, pool, args.runs, args.queues)
        queues = ",".join(f"q{i}" for i in range(args.queues))
        cmd = worker_command(url, pool, "-Q", queues)
        started = time.perf_counter()
        proc = procs.spawn(f"{backend} {pool}", cmd)
        try:
            wait_drained(client, keys, ids, args.timeout, lambda: proc.poll() is None)
        except BenchError as exc:
            raise BenchError(f"{backend} {pool}: {exc}{tail(procs.log(proc))}") from exc
        drain_s = time.perf_counter() - started
        rss, _pss = tree_memory(proc.pid)
        procs.stop(proc)
        return Sample(backend, pool, args.runs, drain_s, lost(client, keys, ids), rss)
    finally:
        app.close()
        client.close()


def table(samples: Sequence[Sample], pools: Sequence[str]) -> str:
    rows = [
        "| pool | single server (runs/s) | cluster, 3 primaries (runs/s) | cluster ÷ single "
        "| lost, single / cluster | worker RSS, single / cluster (MB) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for pool in pools:
        by = {b: [s for s in samples if s.pool == pool and s.backend == b] for b in BACKENDS}
        rate = {b: statistics.median(s.runs / s.drain_s for s in by[b]) for b in BACKENDS}
        gone = {b: sum(s.lost for s in by[b]) for b in BACKENDS}
        rss = {b: statistics.median(s.rss for s in by[b]) / 2**20 for b in BACKENDS}
        rows.append(
            f"| {pool} | {rate['single']:,.0f} | {rate['cluster']:,.0f} "
            f"| {rate['cluster'] / rate['single']:.2f} "
            f"| {gone['single']} / {gone['cluster']} "
            f"| {rss['single']:.1f} / {rss['cluster']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests cluster-drain")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--queues", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pools", default=",".join(POOLS), help=f"among {', '.join(POOLS)}")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each drain (s)")
    args = parser.parse_args()
    pools = [p.strip() for p in args.pools.split(",") if p.strip()]
    if unknown := [p for p in pools if p not in POOLS]:
        parser.error(f"unknown pool {unknown[0]!r}: choose among {', '.join(POOLS)}")
    with tempfile.TemporaryDirectory(prefix="celeriac-cluster-drain-") as tmp:
        base = Path(tmp)
        single = EmbeddedServer(base / "single", persistent=False).start()
        cluster = EmbeddedCluster(base / "cluster").start()
        samples: list[Sample] = []
        try:
            with Procs(base, env=dict(os.environ)) as procs:
                for repeat in range(args.repeat):
                    for pool in pools:
                        for backend, url in (("single", single.url), ("cluster", cluster.url)):
                            sample = one(procs, url, backend, pool, args)
                            samples.append(sample)
                            print(
                                f"repeat {repeat + 1}: {backend:7} {pool:14} "
                                f"{sample.runs / sample.drain_s:8,.0f} runs/s, "
                                f"lost {sample.lost}, RSS {sample.rss / 2**20:.1f} MB",
                                flush=True,
                            )
        finally:
            cluster.stop()
            single.stop()
    print()
    print(f"Drains of {args.runs:,} runs over {args.queues} queues, medians of {args.repeat}:\n")
    print(table(samples, pools))


__all__ = ["main"]
