"""Revoke, terminate and time limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from sdk import App, states
from sdk.errors import Conflict, RunNotFound, TaskRevoked, TimeLimitExceeded
from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.executors.conftest import WorkerFactory, wait_for


@pytest.mark.cluster
def test_revoked_queued_and_delayed_runs_never_start(
    start_worker: WorkerFactory, app: App, r: redis.Redis, tmp_path: Path, layout: Keys
) -> None:
    mark = tmp_path / "ran"
    queued = app.send_task("t.touch", [str(mark)])
    delayed = app.send_task("t.touch", [str(mark)], countdown=0.5)
    queued.revoke()
    delayed.revoke()
    assert queued.state == delayed.state == states.REVOKED
    assert r.zcard(layout.delayed(layout.partition(delayed.id), "default")) == 0
    start_worker("threads")
    control = app.send_task("t.add", [1, 1])
    assert control.get(timeout=10) == 2  # the worker got past the revoked entry
    wait_for(lambda: r.xlen(layout.stream(layout.partition(queued.id), "default", 5)) == 0)
    time.sleep(0.7)  # past the delayed run's countdown
    assert not mark.exists()
    with pytest.raises(TaskRevoked):
        queued.get(timeout=1)


@pytest.mark.cluster
def test_revoking_a_finished_or_unknown_run_is_refused(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads")
    done = app.send_task("t.add", [1, 2])
    done.get(timeout=10)
    with pytest.raises(Conflict):
        done.revoke()
    with pytest.raises(RunNotFound):
        app.AsyncResult("no-such-run").revoke()


@pytest.mark.parametrize("pool_name", ["prefork", "threads", "gevent", "asyncio"])
def test_terminate_stops_a_running_run(
    pool_name: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker(pool_name, "-c", "1")
    mark = tmp_path / "started"
    result = app.send_task("t.spin", [str(mark), 30.0])
    wait_for(mark.exists)
    revoked_at = time.monotonic()
    result.revoke(terminate=True)
    with pytest.raises(TaskRevoked):
        result.get(timeout=10)
    stopped_in = time.monotonic() - revoked_at
    assert stopped_in < 5, stopped_in  # a 30 s run, stopped (measured: well under 1 s)
    assert app.send_task("t.add", [2, 2]).get(timeout=10) == 4  # the slot works again
    assert len(mark.read_text().split()) == 1  # and the revoked run never ran again


def test_hard_time_limit_kills_and_replaces_the_prefork_child(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("prefork", "-c", "1")
    result = app.send_task("t.limited", [30.0])
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=15)
    run = result.info()
    assert run is not None and run["state"] == states.FAILURE
    assert run["error"]["type"] == "sdk.errors.TimeLimitExceeded"
    assert app.send_task("t.limited", [0.0]).get(timeout=10) > 0  # a new child serves


def test_hard_time_limit_cancels_an_async_run_on_the_asyncio_pool(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("asyncio", "-c", "2")
    task = "t.async_limited"
    result = app.send_task(task, [30.0])
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=15)
    run = result.info()
    assert run is not None and run["state"] == states.FAILURE
    assert run["error"]["type"] == "sdk.errors.TimeLimitExceeded"
    assert app.send_task(task, [0.0]).get(timeout=10) > 0  # the slot serves again


def test_soft_time_limit_raises_inside_the_task(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    assert app.send_task("t.soft", [10.0]).get(timeout=10) == "cleaned up"
    assert app.send_task("t.soft", [0.1]).get(timeout=10) == "finished"


@pytest.mark.cluster
def test_revoke_over_http(app: App, redis_url: str, make_gateway: Callable[..., Gateway]) -> None:
    gateway_url = make_gateway(redis_url=redis_url).url
    queued = app.send_task("t.add", [1, 1], queue="nobody")
    with httpx.Client(base_url=gateway_url) as http:
        response = http.post(f"/runs/{queued.id}/revoke", json={"terminate": False})
        assert response.status_code == 202
        assert http.post(f"/runs/{queued.id}/revoke").status_code == 409
        assert http.post("/runs/nope/revoke").status_code == 404
        bad = http.post(f"/runs/{queued.id}/revoke", content=b"{not json")
        assert bad.status_code == 400
    assert queued.state == states.REVOKED
