"""The contract every pool must pass, run against real worker processes. Those marked
``cluster`` also run on the local Redis Cluster (with two pools)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from sdk import App, states
from sdk.errors import TaskExpired, TaskNotFound
from sdk.protocol.keys import Keys
from tests.executors import tasks
from tests.executors.conftest import WorkerFactory, wait_for


@pytest.mark.cluster
def test_add_returns_the_result(pool: str, start_worker: WorkerFactory, app: App) -> None:
    start_worker(pool)
    result = app.send_task("t.add", [2, 3])
    assert result.get(timeout=10) == 5
    run = result.info()
    assert run is not None
    assert run["state"] == states.SUCCESS
    assert run["attempts"] == 1
    assert run["worker"].startswith("w0-")
    assert run["runtime_ms"] is not None and run["finished_at"] >= run["started_at"]


def test_the_heartbeat_counts_every_slots_runs(
    pool: str, start_worker: WorkerFactory, app: App, r: redis.Redis
) -> None:
    """The counts are per slot, summed by the main process: prefork children's too."""
    proc = start_worker(pool, "-c", "3")
    results = [app.send_task("t.add", [i, i]) for i in range(12)]
    results += [app.send_task("t.fail", ["counted"]) for _ in range(3)]
    for result in results:
        result.get(timeout=10, propagate=False)
    worker = f"w0-{os.getpid()}"
    beat = lambda: json.loads(r.hget(Keys().workers, worker) or "{}")  # noqa: E731
    wait_for(lambda: beat().get("processed") == 15, timeout=10)  # the next beat, 2 s at most
    assert (beat()["failed"], beat()["active"]) == (3, 0)
    assert proc.poll() is None


@pytest.mark.cluster
def test_builtin_exception_is_reraised_with_remote_traceback(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    result = app.send_task("t.fail", ["bad input"])
    with pytest.raises(ValueError, match="bad input") as info:
        result.get(timeout=10)
    assert any(
        "Remote traceback" in note and "raise ValueError(message)" in note
        for note in info.value.__notes__
    )
    assert "ValueError: bad input" in (result.traceback or "")
    assert result.failed()
    assert isinstance(result.get(timeout=1, propagate=False), ValueError)


def test_user_exception_is_rebuilt_by_type_name(start_worker: WorkerFactory, app: App) -> None:
    start_worker("threads")
    with pytest.raises(tasks.InventoryError, match="out of apples"):
        app.send_task("t.inventory", ["apples"]).get(timeout=10)
    run = app.AsyncResult(app.send_task("t.inventory", ["x"]).id)
    run.get(timeout=10, propagate=False)
    assert run.info()["error"]["type"] == "tests.executors.tasks.InventoryError"  # type: ignore[index]


def test_unknown_task_fails_with_a_clear_error(start_worker: WorkerFactory, app: App) -> None:
    start_worker("threads")
    with pytest.raises(TaskNotFound, match="not registered"):
        app.send_task("t.nope", []).get(timeout=10)


def test_bound_task_sees_its_request(pool: str, start_worker: WorkerFactory, app: App) -> None:
    start_worker(pool)
    result = app.send_task("t.whoami", [])
    seen = result.get(timeout=10)
    assert seen["id"] == result.id
    assert seen["task"] == "t.whoami"
    assert seen["delivery_count"] == 1
    assert seen["queue"] == "default"
    assert seen["root_id"] == result.id


@pytest.mark.cluster
def test_countdown_waits_in_redis_then_runs(
    start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    start_worker("threads")
    submitted = time.monotonic()
    result = app.send_task("t.add", [1, 1], countdown=1.0)
    assert result.state == states.SCHEDULED
    delayed = layout.delayed(layout.partition(result.id), "default")
    assert r.zscore(delayed, result.id) is not None
    assert result.get(timeout=10) == 2
    assert time.monotonic() - submitted >= 0.9


@pytest.mark.cluster
def test_expired_run_never_executes(start_worker: WorkerFactory, app: App, tmp_path: Path) -> None:
    start_worker("threads")
    mark = tmp_path / "ran"
    result = app.send_task("t.touch", [str(mark)], expires="2000-01-01T00:00:00Z")
    with pytest.raises(TaskExpired):
        result.get(timeout=10)
    assert result.state == states.EXPIRED
    assert not mark.exists()


@pytest.mark.cluster
def test_named_queues_are_consumed_only_by_their_workers(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads", "-Q", "reports")
    other = app.send_task("t.add", [1, 1])  # default queue: nobody consumes it
    mine = app.send_task("t.add", [2, 2], queue="reports")
    assert mine.get(timeout=10) == 4
    assert other.state == states.PENDING


@pytest.mark.cluster
def test_catalog_and_heartbeat_are_registered(start_worker: WorkerFactory, r: redis.Redis) -> None:
    start_worker("prefork", "-c", "3", name="catalog-worker")
    keys = Keys()
    entry = json.loads(r.hget(keys.tasks, "t.add"))
    assert entry["positional"] == ["x", "y"]
    assert entry["parameters"]["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer"}}
    assert entry["queue"] == "default"
    worker = json.loads(r.hget(keys.workers, "catalog-worker"))
    assert worker["pool"] == "prefork"
    assert worker["concurrency"] == 3
    assert "t.add" in worker["tasks"]
    assert r.exists(keys.worker_alive("catalog-worker"))


def test_warm_shutdown_finishes_the_running_run_and_exits_zero(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    proc = start_worker(pool)
    result = app.send_task("t.sleep", [1.0])
    deadline = time.monotonic() + 10
    while result.state != states.STARTED and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert result.get(timeout=1) == 1.0


@pytest.mark.cluster
def test_prefork_child_killed_mid_run_is_replaced_and_the_run_redone(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("prefork", "-c", "1")
    mark = tmp_path / "marks"
    result = app.send_task("t.touch", [str(mark), 2.0])
    deadline = time.monotonic() + 10
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    first_child = int(mark.read_text().split()[0])
    os.kill(first_child, signal.SIGKILL)
    assert result.get(timeout=20) == str(mark)
    pids = mark.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]
    assert result.info()["attempts"] == 2  # type: ignore[index]


def test_max_tasks_per_child_replaces_the_child(start_worker: WorkerFactory, app: App) -> None:
    start_worker("prefork", "-c", "1", "--max-tasks-per-child", "2")
    pids = [app.send_task("t.pid", []).get(timeout=10) for _ in range(4)]
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[1] != pids[2]


@pytest.mark.parametrize("kind", ["prefork", "threads"])
def test_a_slot_that_keeps_crashing_backs_off_then_recovers(
    kind: str, start_worker: WorkerFactory, app: App, r: redis.Redis, tmp_path: Path
) -> None:
    start_worker(kind, "-c", "1", name="crashy")
    stream = Keys().stream(0, "default", 5)
    r.delete(stream)
    r.set(stream, "not a stream")  # every read of the queue now fails with WRONGTYPE
    time.sleep(3.0)
    crashes = (tmp_path / "crashy.log").read_text().count("crashed")
    assert 1 <= crashes <= 4  # pauses of 0.5, 1 and 2 s; replaced at each 0.1 s tick: ~30
    r.delete(stream)  # the fault goes away: the slot comes back by itself
    assert app.send_task("t.add", [2, 3]).get(timeout=30) == 5


@pytest.mark.cluster
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_runs_spread_over_partitions_all_run(
    pool: str, start_worker: WorkerFactory, redis_url: str, r: redis.Redis
) -> None:
    """Four key partitions, fewer slots than partitions: each slot rotates its fetch over
    them, an outcome held from one partition is stored before a call in another (one
    call, one Cluster slot), and delayed runs are promoted in every partition."""
    start_worker(pool, "-c", "2", env={"CELERIAC_PARTITIONS": "4"})
    keys = Keys(partitions=4)
    producer = App("producer", redis_url=redis_url, partitions=4)
    try:
        results = [producer.send_task("t.add", [i, i]) for i in range(40)]
        later = [producer.send_task("t.add", [i, 1], countdown=0.3) for i in range(8)]
        assert [x.get(timeout=20) for x in results] == [2 * i for i in range(40)]
        assert [x.get(timeout=20) for x in later] == [i + 1 for i in range(8)]
        used = {keys.partition(x.id) for x in results + later}
        assert len(used) == 4  # 48 random ids: every partition had runs
        for part in keys.all_partitions:
            assert r.zcard(keys.delayed(part, "default")) == 0
            assert sum(r.xlen(s) for s in keys.streams(part, "default")) == 0  # all acked
    finally:
        producer.close()
