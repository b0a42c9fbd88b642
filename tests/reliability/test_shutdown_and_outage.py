"""Warm shutdown under load, and a Redis restart under load."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sdk import App, states
from sdk.embedded import EmbeddedServer
from sdk.errors import BrokerUnavailable
from tests.conftest import Gateway
from tests.executors.conftest import WorkerFactory


def _wait_started(folder: Path, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("*.start"))) < count and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("pool_name", ["prefork", "threads", "asyncio"])
def test_sigterm_redelivers_exactly_the_runs_still_running_after_the_grace(
    pool_name: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    _sigterm_under_load(pool_name, start_worker, app, tmp_path)


@pytest.mark.parametrize("backend", ["cluster"], indirect=True)
def test_sigterm_on_the_cluster_redelivers_exactly_the_runs_still_running(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    _sigterm_under_load("threads", start_worker, app, tmp_path)


def _sigterm_under_load(
    pool_name: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    fast = {"CELERIAC_WORKER_DEAD_AFTER": "1"}
    worker = start_worker(pool_name, "-c", "4", "--prefetch", "1", "--grace", "2", env=fast)
    short = [app.send_task("t.journal", [str(tmp_path), 0.5]) for _ in range(2)]
    long = [app.send_task("t.journal", [str(tmp_path), 6.0]) for _ in range(2)]
    _wait_started(tmp_path, 4)
    queued = [app.send_task("t.journal", [str(tmp_path), 0.0]) for _ in range(4)]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0  # warm shutdown, grace over, exits cleanly
    start_worker("threads", "-c", "4", env=fast)
    for result in short + long + queued:
        assert result.get(timeout=30) == result.id

    def starts(result: object) -> int:
        return len((tmp_path / f"{result.id}.start").read_text().split())  # type: ignore[attr-defined]

    assert [starts(x) for x in short] == [1, 1]  # finished in the grace: not redelivered
    assert [starts(x) for x in long] == [2, 2]  # still running at the end: redelivered
    assert [starts(x) for x in queued] == [1, 1, 1, 1]  # never started: handed back


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "redis", persistent=True, appendfsync="always").start()
    yield server
    server.stop()


@pytest.mark.parametrize("pool_name", ["threads", "asyncio"])
def test_redis_restart_under_load_loses_no_accepted_run(
    pool_name: str,
    own_server: EmbeddedServer,
    start_worker: WorkerFactory,
    make_gateway: Callable[..., Gateway],
) -> None:
    url = own_server.url
    start_worker(pool_name, "-c", "4", name="survivor", server=url)
    gateway = make_gateway(redis_url=url)
    app = App("p", redis_url=url)
    try:
        accepted: list[str] = []
        refused = 0
        restarted = False
        deadline = time.monotonic() + 20
        while len(accepted) < 600 and time.monotonic() < deadline:
            if len(accepted) == 300 and not restarted:
                own_server.stop()  # clean SIGTERM: the AOF is complete
                assert gateway.client.get("/readyz").status_code == 503
                submitted = gateway.client.post("/tasks/t.add", json={"args": [1, 2]})
                assert submitted.status_code == 503 and "retry-after" in submitted.headers
                own_server.start()
                restarted = True
            try:
                accepted.append(app.send_task("t.add", [len(accepted), 1]).id)
            except BrokerUnavailable:
                refused += 1
                time.sleep(0.05)
        assert restarted and len(accepted) == 600
        for run_id in accepted:
            assert app.AsyncResult(run_id).get(timeout=30) is not None
        assert all(app.AsyncResult(i).state == states.SUCCESS for i in accepted)
        ready = httpx.get(f"{gateway.url}/readyz", timeout=5)
        assert ready.status_code == 200  # the gateway recovered by itself
    finally:
        app.close()
