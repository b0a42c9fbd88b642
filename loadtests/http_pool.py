"""``--pool http`` against the threads pool: N runs drained through a no-op receiver.

    python -m loadtests http [--runs 5000] [--repeat 3]

Each experiment flushes a Valkey, queues N runs with no worker up, starts the worker and
times from its start until every run's record is terminal. The receiver is a raw ASGI
app under uvicorn on 127.0.0.1 (``loadtests/peers/noop_receiver.py``), on the same two
cores as the worker and Valkey. The rows:

- ``http -c 64``: an HTTP task (``App.register_http_task``) run by ``--pool http -c 64``:
  each run one signed POST to the receiver;
- ``threads -c 64 post``: the equivalent Python task, ``bench.post``, making the same POST
  with a pooled ``httpx.Client`` under ``--pool threads -c 64``;
- ``threads -c 8 add``: a Python ``add`` with no I/O at all, the worker's own ceiling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from loadtests.procs import BenchError, Procs, free_port, python, tail, wait_until
from sdk import App
from sdk.calls import Call, SendOptions
from sdk.clients import sync_client
from sdk.embedded import EmbeddedServer
from sdk.protocol.keys import Keys

SECRET = "whsec_" + "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA=="
ROWS = {
    "http -c 64": ["--pool", "http", "-c", "64"],
    "threads -c 64 post": ["--pool", "threads", "-c", "64"],
    "threads -c 8 add": ["--pool", "threads", "-c", "8"],
}
TERMINAL = {b"SUCCESS", b"FAILURE", b"DEAD", b"REVOKED", b"EXPIRED"}


def calls(row: str, n: int, target: str) -> list[Call]:
    opts = SendOptions()
    if row.startswith("http"):
        return [Call("noop.http", (i, 1), {}, opts) for i in range(n)]
    if row.endswith("post"):
        return [Call("bench.post", (target, i, 1), {}, opts) for i in range(n)]
    return [Call("bench.add", (i, 1), {}, opts) for i in range(n)]


def drain(procs: Procs, url: str, row: str, n: int, target: str) -> float:
    client = sync_client(url)
    client.flushall()
    app = App("bench-http", redis_url=url)
    try:
        app.register_http_task("noop.http", target, max_retries=0)
        ids = [r.id for r in app.send_calls(calls(row, n, target))]
    finally:
        app.close()
    keys = Keys()
    worker = python(
        "-m", "sdk.cli", "worker", "-A", "loadtests.peers.celeriac_app", "--redis-url", url,
        "--log-level", "warning", *ROWS[row],
    )  # fmt: skip
    started = time.perf_counter()
    proc = procs.spawn(row, worker)
    left = ids
    try:
        while left:
            pipe = client.pipeline(transaction=False)
            for run_id in left:
                pipe.hget(keys.run(run_id), "state")
            states = pipe.execute()
            left = [i for i, s in zip(left, states, strict=True) if s not in TERMINAL]
            if time.perf_counter() - started > 300 or proc.poll() is not None:
                raise BenchError(f"{row}: {len(left)} of {n} unfinished{tail(procs.log(proc))}")
            time.sleep(0.02)
        took = time.perf_counter() - started
        failed = [s for s in (client.hget(keys.run(i), "state") for i in ids) if s != b"SUCCESS"]
        if failed:
            raise BenchError(f"{row}: {len(failed)} runs did not succeed{tail(procs.log(proc))}")
        return took
    finally:
        procs.stop(proc)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests http")
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celeriac-http-") as tmp:
        server = EmbeddedServer(Path(tmp) / "valkey", persistent=False).start()
        env = {
            **os.environ,
            "BENCH_REDIS_URL": server.url,
            "CELERIAC_HTTP_TASK_SECRET": SECRET,
            "CELERIAC_HTTP_TASK_ALLOW": "127.0.0.1",
        }
        took: dict[str, list[float]] = {}
        try:
            with Procs(Path(tmp), env=env) as procs:
                port = free_port()
                receiver = procs.spawn(
                    "receiver",
                    python(
                        "-m", "uvicorn", "loadtests.peers.noop_receiver:app", "--port", str(port),
                        "--log-level", "warning", "--no-access-log",
                    ),
                )  # fmt: skip
                target = f"http://127.0.0.1:{port}/noop"
                wait_until(lambda: _up(port), 20, "the receiver", receiver)
                for repeat in range(args.repeat):
                    for row in ROWS:
                        s = drain(procs, server.url, row, args.runs, target)
                        took.setdefault(row, []).append(s)
                        print(
                            f"repeat {repeat + 1}: {row:20} {args.runs / s:8.0f} runs/s", flush=True
                        )
        finally:
            server.stop()
    print(f"\n{args.runs:,} runs, medians of {args.repeat} (runs/s, higher is better):\n")
    print("| pool | task | runs/s |\n|---|---|---:|")
    for row, times in took.items():
        pool, task = row.rsplit(" ", 1) if not row.startswith("http") else (row, "HTTP task")
        print(f"| {pool} | {task} | {args.runs / statistics.median(times):,.0f} |")


def _up(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


__all__ = ["main"]
