"""HTTP load on the gateway with wrk (loadtests/wrk/*.lua), next to its ceiling.

The ceiling is loadtests/ceiling.py (a bare Starlette app on the same uvicorn stack)
answering 202 with and without one XADD, loaded by the same wrk script and connections,
so the gateway's POST rate reads as a percentage of what the stack itself allows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from loadtests.peers.celeriac_peer import CeleriacPeer
from loadtests.procs import BenchError, Procs, free_port, python, wait_until

WRK_DIR = Path(__file__).resolve().parent / "wrk"
WRK_MISSING = "wrk not found: HTTP scenarios skipped (install it: apt-get install -y wrk)"
WORKER_POOL = "threads -c 8"


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: the same for every scenario and the ceiling."""

    seconds: float
    connections: int = 32
    threads: int = 1


@dataclass
class WrkResult:
    requests: int
    duration_us: int
    runs: int
    waits: int
    non2xx: int
    socket_errors: int
    p50_us: int
    p99_us: int
    max_us: int

    @property
    def per_s(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def runs_per_s(self) -> float:
        return self.runs / (self.duration_us / 1e6)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, script: str, args: list[str], load: Load) -> WrkResult:
    cmd = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{max(1, round(load.seconds))}s"]
    cmd += ["--timeout", "10s", "-s", str(WRK_DIR / script), base_url, "--", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=load.seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return WrkResult(**json.loads(line.removeprefix("BENCH_JSON ")))
    raise BenchError(f"wrk {script} printed no summary:\n{done.stdout}\n{done.stderr}")


def _serve(procs: Procs, name: str, cmd: list[str], port: int, ready: str) -> Callable[[], None]:
    proc = procs.spawn(name, cmd)
    url = f"http://127.0.0.1:{port}{ready}"
    wait_until(lambda: httpx.get(url).status_code == 200, 30, name, proc, procs.log(proc))
    return lambda: procs.stop(proc)


def ceiling(procs: Procs, client: redis.Redis, load: Load) -> dict[str, WrkResult]:
    port = free_port()
    cmd = python("-m", "uvicorn", "loadtests.ceiling:create_app", "--factory", "--port", str(port))
    cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    stop = _serve(procs, "ceiling", cmd, port, "/healthz")
    try:
        base = f"http://127.0.0.1:{port}"
        return {
            "202, no Redis": run_wrk(base, "submit.lua", ["noop"], load),
            "202 + one XADD": run_wrk(base, "submit.lua", ["xadd"], load),
        }
    finally:
        stop()
        client.flushdb()


class Gateway:
    """A gateway process, and the task catalog restored after each flush."""

    def __init__(self, procs: Procs, client: redis.Redis, peer: CeleriacPeer) -> None:
        self.procs, self.client, self.peer = procs, client, peer
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tasks_key = peer.keys.tasks
        self.catalog: dict[Any, Any] = {}

    def start(self) -> Callable[[], None]:
        self.client.flushdb()
        cmd = python("-m", "sdk.cli", "gateway", "--redis-url", self.peer.redis_url)
        cmd += ["--port", str(self.port), "--log-level", "warning"]
        stop = _serve(self.procs, "gateway", cmd, self.port, "/readyz")
        worker = self.worker(["-Q", "bench-none"])  # registers the catalog, consumes nothing
        self.procs.stop(worker)
        self.catalog = self.client.hgetall(self.tasks_key)
        return stop

    def worker(self, extra: list[str]) -> subprocess.Popen[bytes]:
        proc = self.procs.spawn("gateway worker", self.peer.worker_command(WORKER_POOL) + extra)
        log = self.procs.log(proc)

        def registered() -> bool:
            return bool(self.client.hexists(self.tasks_key, "bench.add"))

        wait_until(registered, 30, "the task catalog", proc, log)
        return proc

    def fresh(self) -> None:
        """An empty server but for the catalog, so submissions are accepted."""
        self.client.flushdb()
        self.client.hset(self.tasks_key, mapping=self.catalog)


def gateway(
    procs: Procs, client: redis.Redis, peer: CeleriacPeer, load: Load
) -> dict[str, WrkResult]:
    gw = Gateway(procs, client, peer)
    stop = gw.start()
    out = {}
    try:
        for label, script, args in (
            ("POST /tasks/{name}", "submit.lua", ["bench.add"]),
            ("POST .../batch, 100 items", "batch.lua", ["bench.add", "100"]),
        ):
            gw.fresh()
            out[label] = run_wrk(gw.base, script, args, load)
        for label, script in (
            (f"POST, then GET ?wait=5 ({WORKER_POOL} worker)", "longpoll.lua"),
            (f"mixed 70/10/20 ({WORKER_POOL} worker)", "mixed.lua"),
        ):
            gw.fresh()
            worker = gw.worker([])
            try:
                out[label] = run_wrk(gw.base, script, ["bench.add"], load)
            finally:
                procs.stop(worker)
    finally:
        stop()
        client.flushdb()
    return out
