"""Long-poll at scale: N clients wait on GET /runs/{id}?wait=60 at once (docs/benchmarks.md).

Starts its own Valkey (or uses --redis-url), a gateway process and, at the end, a worker;
reports (a) how long after each run's ``finished_at`` its long-poll answered (p50/p99/max)
and (b) the Redis command rate while nobody waits and while N clients wait (INFO
commandstats deltas, per second). Only the gateway talks to Redis during (b): the worker
that registers the task catalog is stopped before, and the one that runs the tasks is
started after.

    .venv/bin/python loadtests/longpoll.py --clients 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from sdk.clients import sync_client
from sdk.config import Settings
from sdk.protocol.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
TASK = "examples.echo"
QUEUE = "longpoll"
SECRET = "whsec_" + "bG9uZ3BvbGwtbG9hZHRlc3Qtc2VjcmV0LTMyYnl0ZXM="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(*args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "sdk.cli", *args, "--log-level", "warning"]
    env = {**os.environ, "CELERIAC_WEBHOOK_SECRET": SECRET}  # webhook loops run, as in prod
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, redis.RedisError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def command_rate(client: redis.Redis, seconds: float) -> tuple[float, dict[str, float]]:
    before = command_calls(client)
    time.sleep(seconds)
    after = command_calls(client)
    per = {
        k: (after[k] - before.get(k, 0)) / seconds
        for k in after
        if k not in ("info",) and after[k] != before.get(k, 0)
    }
    return sum(per.values()), per


async def long_poll(port: int, run_id: str, opened: asyncio.Event) -> tuple[float, Any]:
    """One raw HTTP/1.1 long-poll (no client library overhead); (answered at, run JSON)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /runs/{run_id}?wait=60 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    opened.set()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    answered = time.time()
    writer.close()
    return answered, json.loads(body)


def finished_ms(run: dict[str, Any]) -> float:
    return datetime.fromisoformat(run["finished_at"].replace("Z", "+00:00")).timestamp() * 1000


async def open_polls(port: int, ids: list[str]) -> list[asyncio.Task[tuple[float, Any]]]:
    tasks = []
    for start in range(0, len(ids), 200):  # in steps, under the listen backlog
        events = []
        for run_id in ids[start : start + 200]:
            opened = asyncio.Event()
            events.append(opened)
            tasks.append(asyncio.create_task(long_poll(port, run_id, opened)))
        await asyncio.gather(*(e.wait() for e in events))
    return tasks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, url: str, port: int, r: redis.Redis) -> dict[str, Any]:
    gw = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    task, arg = ("examples.sleep", args.task_seconds) if args.task_seconds else (TASK, 1)
    items = [{"args": [arg], "queue": QUEUE} for _ in range(args.clients)]
    ids = gw.post(f"/tasks/{task}/batch", json={"items": items}).json()["ids"]
    idle_total, _ = command_rate(r, args.window)
    first_reads = command_calls(r).get("hgetall", 0) + args.clients
    polls = await open_polls(port, ids)
    while command_calls(r).get("hgetall", 0) < first_reads:  # each poll read its run once
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # and is parked
    waiting_total, waiting = await asyncio.to_thread(command_rate, r, args.window)
    worker = spawn(
        "worker",
        "-A",
        "examples",
        "--redis-url",
        url,
        "--pool",
        "threads",
        "-c",
        str(args.concurrency),
        "-Q",
        QUEUE,
        "--name",
        "lp-runner",
    )
    try:
        results = await asyncio.wait_for(asyncio.gather(*polls), args.timeout)
    finally:
        stop(worker)
    bad = [run for _a, run in results if "finished_at" not in run]
    if bad:
        raise SystemExit(f"{len(bad)} long-polls answered no run, e.g. {bad[0]}")
    delays = [answered * 1000 - finished_ms(run) for answered, run in results]
    states = {run["state"] for _a, run in results}
    return {
        "clients": args.clients,
        "worker": f"threads -c {args.concurrency}, task {task}({arg})",
        "states": sorted(states),
        "delay_ms": {
            "p50": round(statistics.median(delays), 1),
            "p99": round(percentile(delays, 0.99), 1),
            "max": round(max(delays), 1),
        },
        "redis_commands_per_s": {
            "no_waiters": round(idle_total, 2),
            "waiting": round(waiting_total, 2),
            "waiting_by_command": {k: round(v, 2) for k, v in sorted(waiting.items())},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per rate sample")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--gateway-workers", type=int, default=1, help="gateway processes")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "--task-seconds",
        type=float,
        default=0.0,
        help="runs sleep this long (paces completions); 0: echo, all finish in one burst",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.redis_url is None:
            from sdk.embedded import EmbeddedServer

            server = EmbeddedServer(Path(tmp), persistent=False).start()
        url = args.redis_url or server.url  # type: ignore[union-attr]
        try:
            print(json.dumps(run(args, url), indent=2))
        finally:
            if server is not None:
                server.stop()


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    r = sync_client(url)
    if not isinstance(r, redis.Redis):  # INFO commandstats: one server's counts
        raise SystemExit("longpoll measures one server's commands: give a redis:// URL")
    r.flushall()
    port = free_port()
    gateway = spawn(
        "gateway", "--redis-url", url, "--port", str(port), "--workers", str(args.gateway_workers)
    )
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200,
            30,
            "the gateway",
        )
        catalog = spawn(
            "worker",
            "-A",
            "examples",
            "--redis-url",
            url,
            "--pool",
            "threads",
            "-Q",
            "lp-none",
            "--name",
            "lp-catalog",
        )
        tasks = Keys.from_settings(Settings().with_env()).tasks  # as the processes see it
        wait_until(lambda: r.hexists(tasks, TASK), 30, "the task catalog")
        stop(catalog)
        return asyncio.run(measure(args, url, port, r))
    finally:
        stop(gateway)


if __name__ == "__main__":
    main()
