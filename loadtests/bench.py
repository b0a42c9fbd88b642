"""``python -m loadtests bench``: Celeriac, Celery 5 and Dramatiq on one Redis, one table.

Every system runs ``add(x, y)`` and a ~1 KB ``echo`` on the same server in the same run;
each measurement is repeated and the median printed (Markdown, ready for
docs/benchmarks.md). Everything is started here and stopped at the end: a Valkey server
on a free port (or ``--redis-url``, whose database is flushed between experiments), the
workers as subprocesses in their own process groups, a gateway, the ceiling app, wrk.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis

from loadtests import commands, drain, gateway_load, latency, table
from loadtests.peers import ALL_KINDS, KINDS, NAMES, Peer, create
from loadtests.peers.celeriac_peer import CeleriacPeer
from loadtests.procs import ROOT, BenchError, Procs
from loadtests.results import Results
from sdk.clients import sync_client

MEASURES = ("enqueue", "batch", "drain", "rss", "commands", "monitor", "latency", "http")
_DRAIN = {"drain", "rss", "commands"}  # these come out of one enqueue-then-drain experiment
MB = 1 << 20
T = TypeVar("T")


@dataclass
class Config:
    runs: int
    repeat: int
    only: tuple[str, ...]
    systems: tuple[str, ...]
    kinds: tuple[str, ...]
    redis_url: str | None
    json: Path | None
    timeout: float
    latency_runs: int
    monitor_runs: int
    batch_size: int
    http: gateway_load.Load

    def wants(self, *measures: str) -> bool:
        return any(m in self.only for m in measures)


def parse(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(prog="python -m loadtests bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat (minutes)")
    p.add_argument("--runs", type=int, help="runs per drain (default 20,000; quick 2,000)")
    p.add_argument("--repeat", type=int, help="repeats per measurement (default 3; quick 1)")
    p.add_argument("--only", default=",".join(MEASURES), help=f"among {','.join(MEASURES)}")
    p.add_argument("--systems", default=",".join(NAMES))
    p.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="tasks: add, echo (1 KB), sleep (50 ms of I/O, on the high-concurrency pools)",
    )
    p.add_argument("--redis-url", help="use this server (its database is FLUSHED)")
    p.add_argument("--json", type=Path, help="also write every sample here")
    p.add_argument("--timeout", type=float, default=300.0, help="bound on each wait (s)")
    p.add_argument("--latency-runs", type=int, help="round trips per path (1,000; quick 200)")
    p.add_argument("--monitor-runs", type=int, help="runs in the MONITOR sample (500; quick 100)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--http-seconds", type=float, help="per wrk scenario (10; quick 3)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=1)
    a = p.parse_args(argv)
    only = _names(a.only, MEASURES, p)
    q = a.quick
    return Config(
        runs=a.runs or (2_000 if q else 20_000),
        repeat=a.repeat or (1 if q else 3),
        only=only,
        systems=_names(a.systems, NAMES, p),
        kinds=_names(a.kinds, ALL_KINDS, p),
        redis_url=a.redis_url,
        json=a.json,
        timeout=a.timeout,
        latency_runs=a.latency_runs or (200 if q else 1_000),
        monitor_runs=a.monitor_runs or (100 if q else 500),
        batch_size=a.batch_size,
        http=gateway_load.Load(a.http_seconds or (3 if q else 10), a.connections, a.wrk_threads),
    )


def _names(text: str, allowed: tuple[str, ...], p: argparse.ArgumentParser) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if bad := [n for n in names if n not in allowed]:
        p.error(f"unknown {', '.join(bad)}: choose among {', '.join(allowed)}")
    return names


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def server(cfg: Config, tmp: Path) -> Iterator[str]:
    if cfg.redis_url:
        say(f"using {cfg.redis_url}: its database is flushed between experiments")
        yield cfg.redis_url
        return
    from sdk.embedded import EmbeddedServer

    embedded = EmbeddedServer(tmp / "valkey", persistent=False).start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


def environment(url: str) -> dict[str, str]:
    """For this process (the peers' modules read it at import) and every child."""
    os.environ.pop("CELERIAC_GATEWAY_URL", None)  # the direct path, unless a test says so
    os.environ.update(
        BENCH_REDIS_URL=url,
        CELERIAC_REDIS_URL=url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return dict(os.environ)


class Bench:
    def __init__(self, cfg: Config, client: redis.Redis, url: str, procs: Procs) -> None:
        self.cfg, self.client, self.url, self.procs = cfg, client, url, procs
        self.peers: dict[str, Peer] = {n: create(n, url) for n in cfg.systems}
        self.results = Results()

    def run(self) -> None:
        steps = [
            (_DRAIN | {"enqueue"}, self.drains),
            ({"batch"}, self.batches),
            ({"monitor"}, self.monitor),
            ({"latency"}, self.latency),
            ({"http"}, self.http),
        ]
        for n in range(self.cfg.repeat):
            say(f"== repeat {n + 1} of {self.cfg.repeat}")
            for wanted, step in steps:
                if self.cfg.wants(*wanted):
                    step()

    def _try(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Run one experiment; a failure is reported and the others go on."""
        try:
            return fn(*args)
        except (BenchError, redis.RedisError) as exc:
            say(f"!! {what} failed: {exc}")
            return None

    # -- (a), (b), (d), (e): enqueue with no worker, then drain --------------------------------
    def drains(self) -> None:
        for kind in self.cfg.kinds:
            for peer in self.peers.values():
                pools = peer.pools_for(kind)
                pools = pools if self.cfg.wants(*_DRAIN) else pools[:1]
                for pool in pools:
                    self._try(f"{peer.name} {pool} {kind}", self._drain, peer, pool, kind)

    def _drain(self, peer: Peer, pool: str, kind: str) -> None:
        n, r = self.cfg.runs, self.results
        if not self.cfg.wants(*_DRAIN):  # the enqueue rate alone
            self.client.flushdb()
            _, seconds = drain.enqueue(peer, pool, kind, n)
            r.add("enqueue/s", peer.name, kind, n / seconds)
            say(f"{peer.name:9} {kind:4} enqueue {n / seconds:8,.0f}/s")
            return
        d = drain.drain(self.client, self.procs, peer, pool, kind, n, self.cfg.timeout)
        variant = f"{pool} | {kind}"
        r.add("enqueue/s", peer.name, kind, n / d.enqueue_s)
        r.add("drain/s", peer.name, variant, n / d.drain_s)
        r.add("first result s", peer.name, variant, d.first_s)
        r.add("drain after first result/s", peer.name, variant, (n - 1) / (d.drain_s - d.first_s))
        r.add("rss MB", peer.name, variant, d.rss / MB)
        r.add("pss MB", peer.name, variant, d.pss / MB)
        r.add("producer cmds/run", peer.name, kind, d.producer.total() / n)
        r.add("worker cmds/run", peer.name, variant, d.worker.total() / n)
        r.detail(measure="commandstats", system=peer.name, variant=variant,
                 producer=_per_run(d.producer, n), worker=_per_run(d.worker, n))  # fmt: skip
        say(
            f"{peer.name:9} {pool:24} {kind:4} enqueue {n / d.enqueue_s:8,.0f}/s  drain "
            f"{n / d.drain_s:8,.0f}/s (first result {d.first_s:.2f}s)  RSS {d.rss / MB:6.1f} MB  "
            f"cmds/run {d.producer.total() / n:.2f} + {d.worker.total() / n:.2f}"
        )

    def batches(self) -> None:
        n, size = self.cfg.runs, self.cfg.batch_size
        for kind in self.cfg.kinds:
            for peer in self.peers.values():
                self.client.flushdb()
                seconds = drain.enqueue_batches(peer, kind, n, size)
                if seconds is not None:
                    sent = max(1, n // size) * size
                    self.results.add("enqueue batch/s", peer.name, kind, sent / seconds)
                    say(f"{peer.name:9} {kind:4} enqueue in batches of {size}: "
                        f"{sent / seconds:,.0f}/s")  # fmt: skip

    # -- (e) top-level commands -----------------------------------------------------------------
    def monitor(self) -> None:
        m, kind = self.cfg.monitor_runs, self.cfg.kinds[0]
        for peer in self.peers.values():
            args = (self.client, self.url, self.procs, peer, kind, m, self.cfg.timeout)
            s = self._try(f"{peer.name} MONITOR", commands.sample, *args)
            if s is None:
                continue
            self.results.add("producer top-level/run", peer.name, kind, s.producer.total() / m)
            self.results.add("worker top-level/run", peer.name, kind, s.worker.total() / m)
            self.results.detail(measure="monitor", system=peer.name, pool=peer.pools[0],
                                producer=_per_run(s.producer, m), worker=_per_run(s.worker, m),
                                scripted=_per_run(s.scripted, m))  # fmt: skip
            say(f"{peer.name:9} top-level cmds/run: producer {s.producer.total() / m:.2f}, "
                f"worker {s.worker.total() / m:.2f}")  # fmt: skip

    # -- (c) round trips --------------------------------------------------------------------------
    def latency(self) -> None:
        stop = None
        celeriac = self.peers.get("celeriac")
        gateway_url = None
        if isinstance(celeriac, CeleriacPeer):
            gw = gateway_load.Gateway(self.procs, self.client, celeriac)
            stop = self._try("gateway start", gw.start)
            gateway_url = gw.base if stop else None
        try:
            for kind in self.cfg.kinds:
                for peer in self.peers.values():
                    self._try(f"{peer.name} latency", self._latency, peer, kind, gateway_url)
        finally:
            if callable(stop):
                stop()

    def _latency(self, peer: Peer, kind: str, gateway_url: str | None) -> None:
        n = self.cfg.latency_runs
        self.client.flushdb()
        for label, (p50, p99) in latency.measure(
            self.procs, peer, kind, n, max(20, n // 10), gateway_url
        ).items():
            self.results.add("p50 ms", peer.name, f"{label} | {kind}", p50)
            self.results.add("p99 ms", peer.name, f"{label} | {kind}", p99)
            say(f"{peer.name:9} {kind:4} {label:20} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")

    # -- deliverable 2: the gateway under wrk, next to its ceiling --------------------------------
    def http(self) -> None:
        celeriac = self.peers.get("celeriac")
        if not gateway_load.wrk_available():
            say(gateway_load.WRK_MISSING)
            return
        if not isinstance(celeriac, CeleriacPeer):
            return
        load = self.cfg.http
        for system, found in (
            ("ceiling", self._try("ceiling", gateway_load.ceiling, self.procs, self.client, load)),
            ("celeriac", self._try("gateway", gateway_load.gateway, self.procs, self.client,
                                   celeriac, load)),
        ):  # fmt: skip
            for scenario, w in (found or {}).items():
                for metric, value in (
                    ("http req/s", w.per_s),
                    ("http runs/s", w.runs_per_s),
                    ("http p50 ms", w.p50_us / 1000),
                    ("http p99 ms", w.p99_us / 1000),
                    ("http non-2xx", w.non2xx + w.socket_errors),
                ):
                    self.results.add(metric, system, scenario, value)
                say(f"{system:9} {scenario:45} {w.per_s:9,.0f} req/s  p99 {w.p99_us / 1000:.1f} ms")


def _per_run(counts: Counter[str], n: int) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in counts.most_common()}


def report(cfg: Config, results: Results, peers: dict[str, Peer]) -> str:
    pools = {name: list(p.pools) for name, p in peers.items()}
    parts = []
    if comparison := table.comparison(results, table.peer_rows(results, cfg.kinds, pools)):
        parts += [
            f"Celeriac vs Celery 5 and Dramatiq, same Redis, same run: median of {cfg.repeat}; "
            f"drains of {cfg.runs:,} runs; {cfg.latency_runs:,} round trips per path.",
            comparison,
        ]
    if gateway := table.http(results):
        load = cfg.http
        parts += [
            f"\nGateway under wrk ({load.connections} keep-alive connections, {load.threads} "
            f"wrk thread, {load.seconds:g} s per scenario):",
            gateway,
        ]
    return "\n".join(p for p in parts if p)


def main(argv: list[str]) -> int:
    try:
        return _main(parse(argv))
    except BenchError as exc:
        say(f"bench: {exc}")
        return 2


def _main(cfg: Config) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, server(cfg, Path(tmp)) as url:
        env = environment(url)
        client = sync_client(url)
        if not isinstance(client, redis.Redis):  # its peers and INFO counts are one server's
            raise BenchError("the benchmarks measure one server: give a redis:// URL")
        logs = Path(tmp) / "logs"
        logs.mkdir()
        with Procs(logs, env) as procs:
            bench = Bench(cfg, client, url, procs)
            try:
                bench.run()
            finally:
                for peer in bench.peers.values():
                    peer.close()
        client.close()
    say(f"== done in {time.monotonic() - started:.0f} s")
    print(report(cfg, bench.results, bench.peers))
    if cfg.json:
        config = {**asdict(cfg), "json": str(cfg.json), "python": sys.version.split()[0]}
        bench.results.write_json(cfg.json, config)
    return 0
