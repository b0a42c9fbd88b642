"""The asyncio pool: async tasks share one loop and overlap; limits cancel them."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest

from sdk import App, states
from sdk.calls import Call, SendOptions
from sdk.errors import SoftTimeLimitExceeded, TaskRevoked
from tests.executors.conftest import WorkerFactory


def windows_in_flight_together(app: App, runs: int) -> list[list[Any]]:
    """``runs`` async runs of a second each, one per slot: when each ran, and on which
    loop; asserts they were all in flight at once."""
    results = [app.send_task("t.async_window", [1.0]) for _ in range(runs)]
    windows: list[list[Any]] = [r.get(timeout=15) for r in results]
    latest_start = max(start for start, _, _ in windows)
    earliest_end = min(end for _, end, _ in windows)
    assert latest_start < earliest_end
    return windows


def test_async_tasks_run_on_one_shared_loop_concurrently(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("asyncio", "-c", "4", "--prefetch", "1")  # one run per slot
    assert app.send_task("t.async_add", [2, 3]).get(timeout=10) == 5
    windows = windows_in_flight_together(app, 4)
    assert len({loop for _, _, loop in windows}) == 1  # one loop for every run


def test_a_thousand_slots_are_coroutines_not_threads(start_worker: WorkerFactory, app: App) -> None:
    worker = start_worker("asyncio", "-c", "1000")
    calls = [Call("t.async_window", [2.0], {}, SendOptions()) for _ in range(1000)]
    windows = [r.get(timeout=30) for r in app.send_calls(calls)]  # two seconds each
    assert max(start for start, _, _ in windows) < min(end for _, end, _ in windows)
    assert len({loop for _, _, loop in windows}) == 1  # all in flight at once, on one loop
    threads = psutil.Process(worker.pid).num_threads()
    assert threads < 12, threads  # the loop's, the main one and a few helpers: not 1000


def test_async_soft_time_limit_and_terminate_cancel_the_coroutine(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("asyncio", "-c", "2")
    with pytest.raises(SoftTimeLimitExceeded):
        app.send_task("t.async_spin", [10.0]).get(timeout=10)
    assert app.send_task("t.async_spin", [0.0]).get(timeout=10) == "finished"
    running = app.send_task("t.async_window", [30.0])
    deadline = time.monotonic() + 10
    while running.state != states.STARTED and time.monotonic() < deadline:
        time.sleep(0.01)
    running.revoke(terminate=True)
    with pytest.raises(TaskRevoked):
        running.get(timeout=10)


def test_async_tasks_also_run_under_the_other_pools(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    assert app.send_task("t.async_add", [20, 22]).get(timeout=10) == 42


@pytest.mark.parametrize("kind", ["threads", "prefork"])
def test_a_slot_keeps_its_loop_so_kept_async_state_stays_usable(
    kind: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(kind, "-c", "1")
    for _ in range(3):  # a fresh loop per run failed the second: "bound to a different loop"
        assert app.send_task("t.async_kept_lock", []).get(timeout=10) == "ok"
    with pytest.raises(SoftTimeLimitExceeded):  # cancelled on the loop, which lives on
        app.send_task("t.async_spin", [30.0]).get(timeout=10)
    assert app.send_task("t.async_kept_lock", []).get(timeout=10) == "ok"


@pytest.mark.parametrize("kind", ["threads", "prefork", "gevent"])
def test_the_soft_time_limit_stops_an_async_task_under_the_other_pools(
    kind: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(kind, "-c", "1")
    with pytest.raises(SoftTimeLimitExceeded):  # the limit is 0.5 s; the sleep 30 s
        app.send_task("t.async_spin", [30.0]).get(timeout=10)
    assert app.send_task("t.async_spin", [0.0]).get(timeout=10) == "finished"


@pytest.mark.parametrize("kind", ["threads", "gevent"])
def test_async_tasks_overlap_under_the_other_pools(
    kind: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(kind, "-c", "3", "--prefetch", "1")  # one run per slot
    windows_in_flight_together(app, 3)  # gevent failed two of three here


def test_the_soft_time_limit_stops_an_async_task_that_never_awaits(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads", "-c", "1")
    with pytest.raises(SoftTimeLimitExceeded):  # limit 0.5 s, then a second's grace
        app.send_task("t.async_busy", [30.0]).get(timeout=10)
    assert app.send_task("t.async_spin", [0.0]).get(timeout=10) == "finished"
