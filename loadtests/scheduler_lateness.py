"""Fire lateness of the scheduler: enqueue time minus due time, with N active schedules.

Starts an embedded Valkey (or uses --redis-url), writes N interval schedules straight into
the store (staggered over the interval so fires spread out), runs one ``celeriac
scheduler`` process for --seconds, then reads every run it queued: lateness = the run's
``created_at`` (set when the scheduler built it, just before submit) minus its fire time
(carried in the run id). Runs are found in the run history, which the scheduler is
started with room enough for every one. No worker runs: only the scheduler's side is
measured. The CELERIAC_* settings (prefix, partitions) apply to both sides.

    .venv/bin/python loadtests/scheduler_lateness.py --schedules 1000 --every 10 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from gateway.scheduler.model import Interval, Schedule, fire_ms_of
from gateway.scheduler.store import Store
from sdk.clients import async_client, sync_client
from sdk.config import ENV_VARS, Settings
from sdk.embedded import EmbeddedServer
from sdk.protocol import F_CREATED, now_ms
from sdk.protocol.keys import Keys

ROOT = Path(__file__).resolve().parents[1]


def settings_for(args: argparse.Namespace) -> Settings:
    """The environment's settings, with a history that keeps every run queued."""
    runs = int(args.schedules * (args.seconds / args.every + 2))
    return Settings(history_size=max(runs, Settings.history_size)).with_env()


def scheduler_env(settings: Settings) -> dict[str, str]:
    names = ("prefix", "partitions", "history_size")
    values = {n: getattr(settings, n) for n in names}
    return {**os.environ, **{ENV_VARS[n]: str(v) for n, v in values.items() if v is not None}}


async def create(url: str, keys: Keys, count: int, every: float) -> None:
    client = async_client(url)
    store = Store(client, keys)
    now = now_ms()
    for i in range(count):
        anchor = now + int(i * every * 1000 / count)  # spread the fires over one interval
        trigger = Interval(seconds=every)
        s = Schedule(id=f"load-{i}", task="load.noop", trigger=trigger, anchor=anchor,
                     created_at=now, updated_at=now)  # fmt: skip
        await store.create(s)
    await client.aclose()


def measure(url: str, keys: Keys) -> list[int]:
    """Lateness (ms) of every run in the history of every partition."""
    client = sync_client(url)
    late = []
    for part in keys.all_partitions:
        history = cast(list[bytes], client.zrange(keys.history(part), 0, -1))
        runs = [i.decode() for i in history]
        pipe = client.pipeline(transaction=False)
        for run in runs:
            pipe.hget(keys.run(run), F_CREATED)
        for run, created in zip(runs, pipe.execute(), strict=True):
            if created is not None:
                late.append(int(created) - fire_ms_of(run))
    client.close()
    return late


def pct(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--every", type=float, default=10.0, help="interval of each (s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    settings = settings_for(args)
    keys = Keys.from_settings(settings)
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.redis_url else EmbeddedServer(Path(tmp), persistent=False).start()
        url = args.redis_url or server.url  # type: ignore[union-attr]
        sync_client(url).flushall()
        cmd = [sys.executable, "-m", "sdk.cli", "scheduler", "--redis-url", url]
        proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"], cwd=ROOT, env=scheduler_env(settings)
        )
        try:
            time.sleep(2)  # the scheduler takes the lease
            asyncio.run(create(url, keys, args.schedules, args.every))
            time.sleep(args.seconds)
        finally:
            proc.terminate()
            proc.wait(20)
        late = measure(url, keys)
        if server is not None:
            server.stop()
    if not late:
        sys.exit("no runs were queued")
    print(f"schedules={args.schedules} every={args.every:g}s measured={args.seconds:g}s")
    print(f"runs={len(late)} ({len(late) / args.seconds:.1f}/s)")
    print(
        f"lateness ms: p50={pct(late, 0.5)} p90={pct(late, 0.9)} p99={pct(late, 0.99)} "
        f"max={max(late)} mean={statistics.fmean(late):.1f} min={min(late)}"
    )


if __name__ == "__main__":
    main()
