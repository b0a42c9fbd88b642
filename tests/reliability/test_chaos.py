"""Kill workers at random moments under load: nothing is lost, nothing runs twice
except the runs that were executing at a kill."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
import redis

from sdk import App, states
from sdk.calls import Call, SendOptions
from sdk.protocol.keys import Keys
from tests.executors.conftest import WorkerFactory
from tests.reliability.conftest import scale

KILLS = 5
CONCURRENCY = 4
FAST = {"CELERIAC_WORKER_DEAD_AFTER": "1"}


def _submit(app: App, count: int, task: str) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 1000):
        calls = [
            Call(task, [i, i], {}, SendOptions()) for i in range(start, min(count, start + 1000))
        ]
        ids += [r.id for r in app.send_calls(calls)]
    return ids


def _states(r: redis.Redis, ids: list[str], keys: Keys) -> list[tuple[str | None, int]]:
    pipe = r.pipeline(transaction=False)
    for run_id in ids:
        pipe.hmget(keys.run(run_id), "state", "attempts")
    return [(s.decode() if s else None, int(a or 0)) for s, a in pipe.execute()]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("pool_name", ["prefork", "threads", "gevent", "asyncio"])
def test_sigkill_the_worker_tree_five_times_loses_nothing(
    pool_name: str, start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    _kill_five_times(pool_name, start_worker, app, r, layout)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["cluster"], indirect=True)
def test_sigkill_five_times_on_the_cluster_loses_nothing(
    start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    _kill_five_times("threads", start_worker, app, r, layout)


def _kill_five_times(
    pool_name: str, start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    total = scale(full=20_000, ci=3_000)
    ids = _submit(app, total, "t.async_add" if pool_name == "asyncio" else "t.add")
    rng = random.Random(total)
    extra = ("-c", str(CONCURRENCY), "--prefetch", "8")
    worker = start_worker(pool_name, *extra, env=FAST)
    for kill in range(KILLS):
        time.sleep(rng.uniform(0.2, 1.0))
        os.killpg(worker.pid, signal.SIGKILL)  # the whole process tree, mid-flight
        worker.wait(10)
        worker = start_worker(pool_name, *extra, name=f"chaos-{kill}", env=FAST)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = _states(r, ids, layout)
        if all(state in states.TERMINAL for state, _ in found):
            break
        time.sleep(0.5)
    lost = [i for i, (state, _) in zip(ids, found, strict=True) if state != states.SUCCESS]
    duplicates = sum(attempts - 1 for _, attempts in found if attempts > 1)
    print(
        f"\n{pool_name}: {total} runs, {KILLS} kills, 0 lost expected, "
        f"{len(lost)} not SUCCESS, {duplicates} duplicate executions"
    )
    assert lost == []
    # Only a run executing at a kill can run again: at most one per slot per kill.
    assert duplicates <= KILLS * CONCURRENCY
    streams = [s for part in layout.all_partitions for s in layout.streams(part, "default")]
    assert sum(r.xlen(s) for s in streams) == 0
