"""A chord and a group of N no-op runs, Celeriac against Celery 5, on one server.

    python -m loadtests canvas [--members 10000] [--repeat 3] [--pool "threads -c 8"]
                               [--kinds chord,group] [--systems celeriac,celery]

Each experiment starts the system's worker on a flushed Valkey, waits until it answers
one run, then times from the first submission to the body's result (a chord of
``add(i, i)`` with ``xsum`` as its body) or to every result of the group (its
``GroupResult.get()``), and checks the values. Both use the same pool and concurrency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests.procs import BenchError, Procs, tail
from sdk.clients import sync_client
from sdk.embedded import EmbeddedServer

POOLS = {
    "threads -c 8": {
        "celeriac": ["--pool", "threads", "-c", "8"],
        "celery": ["-P", "threads", "-c", "8"],
    },
    "prefork -c 2": {
        "celeriac": ["--pool", "prefork", "-c", "2"],
        "celery": ["-P", "prefork", "-c", "2"],
    },
}
SYSTEMS = ("celeriac", "celery")
KINDS = ("chord", "group")


def worker(system: str, url: str, pool: str) -> list[str]:
    from loadtests.procs import python

    if system == "celeriac":
        return python(
            "-m", "sdk.cli", "worker", "-A", "loadtests.peers.celeriac_app",
            "--redis-url", url, "--log-level", "warning", *POOLS[pool]["celeriac"],
        )  # fmt: skip
    return python(
        "-m", "celery", "-A", "loadtests.peers.celery_app", "worker", "-l", "WARNING",
        "--without-mingle", "--without-gossip", *POOLS[pool]["celery"],
    )  # fmt: skip


def experiment(system: str, kind: str, n: int) -> Callable[[], Any]:
    """A function that submits the work and returns its checked result."""
    if system == "celeriac":
        from loadtests.peers import celeriac_app as cc
        from sdk import chord, group

        if kind == "chord":
            return lambda: chord(cc.add.s(i, i) for i in range(n))(cc.xsum.s()).get(timeout=600)
        return lambda: sum(group(cc.add.s(i, i) for i in range(n))().get(timeout=600))
    import celery

    from loadtests.peers import celery_app as ce

    if kind == "chord":
        return lambda: celery.chord(ce.add.s(i, i) for i in range(n))(ce.xsum.s()).get(timeout=600)
    return lambda: sum(celery.group(ce.add.s(i, i) for i in range(n))().get(timeout=600))


def warm(system: str) -> None:
    """Wait until the worker answers one run."""
    if system == "celeriac":
        from loadtests.peers import celeriac_app as cc

        cc.add.delay(1, 2).get(timeout=60)
    else:
        from loadtests.peers import celery_app as ce

        ce.add.delay(1, 2).get(timeout=60)


def one(procs: Procs, url: str, system: str, kind: str, pool: str, n: int) -> float:
    sync_client(url).flushall()
    proc = procs.spawn(f"{system} {kind}", worker(system, url, pool))
    try:
        warm(system)
        run = experiment(system, kind, n)
        started = time.perf_counter()
        value = run()
        took = time.perf_counter() - started
    except Exception as exc:
        raise BenchError(f"{system} {kind}: {exc!r}{tail(procs.log(proc))}") from exc
    finally:
        procs.stop(proc)
    if value != n * (n - 1):
        raise BenchError(f"{system} {kind}: got {value}, not {n * (n - 1)}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests canvas")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pool", default="threads -c 8", choices=list(POOLS))
    parser.add_argument("--kinds", default=",".join(KINDS), help="chord, group or both")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="celeriac, celery or both")
    args = parser.parse_args()
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    with tempfile.TemporaryDirectory(prefix="celeriac-canvas-") as tmp:
        server = EmbeddedServer(Path(tmp) / "valkey", persistent=False).start()
        os.environ["BENCH_REDIS_URL"] = server.url  # both apps read it at import
        took: dict[tuple[str, str], list[float]] = {}
        try:
            with Procs(Path(tmp), env=dict(os.environ)) as procs:
                for repeat in range(args.repeat):
                    for kind in kinds:
                        for system in systems:
                            s = one(procs, server.url, system, kind, args.pool, args.members)
                            took.setdefault((system, kind), []).append(s)
                            print(
                                f"repeat {repeat + 1}: {system:8} {kind:5} {s:7.2f} s", flush=True
                            )
        finally:
            server.stop()
    print(
        f"\n{args.members:,} members, {args.pool}, medians of {args.repeat} (s, lower is better):\n"
    )
    if systems != list(SYSTEMS):  # one system: its figures only
        print("| work | " + " | ".join(systems) + " |\n|---|" + "---:|" * len(systems))
        for kind in kinds:
            cells = " | ".join(f"{statistics.median(took[(s, kind)]):.2f}" for s in systems)
            print(f"| {kind} of {args.members:,} `add`, submit to result | {cells} |")
        return
    print("| work | Celeriac | Celery | Celery ÷ Celeriac |\n|---|---:|---:|---:|")
    for kind in kinds:
        c, e = (statistics.median(took[(s, kind)]) for s in SYSTEMS)
        work = f"{kind} of {args.members:,} `add`, submit to result"
        print(f"| {work} | {c:.2f} | {e:.2f} | {e / c:.1f}x |")


__all__ = ["main"]
