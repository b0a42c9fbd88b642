"""Task base classes with hooks, and replacing a child that grew too big."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from sdk import App, states
from sdk.errors import Reject
from sdk.protocol.keys import Keys
from tests.executors.conftest import WorkerFactory, wait_for


def test_base_class_hooks_run_in_the_executor(
    pool: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker(pool)
    journal = tmp_path / "hooks"
    assert app.send_task("t.hooked", [str(journal), "ok"]).get(timeout=10) == "ok"
    with pytest.raises(KeyError):
        app.send_task("t.hooked", [str(journal), "fail"]).get(timeout=10)
    with pytest.raises(ConnectionError):
        app.send_task("t.hooked", [str(journal), "retry"]).get(timeout=10)
    assert journal.read_text().splitlines() == [
        "success ok",
        "failure KeyError",
        "retry again",
        "failure ConnectionError",
    ]


def test_an_apps_own_middleware_wraps_its_runs(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    stamped = app.send_task("t.stamped", [21]).get(timeout=10)
    assert stamped["value"] == 42 and stamped["attempts"] == 1
    assert isinstance(stamped["stamped_in"], int)  # before_execute ran in the same slot
    assert app.send_task("t.add", [2, 3]).get(timeout=10) == 5  # others pass untouched


def test_an_apps_middleware_wraps_async_runs_on_the_asyncio_pool(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("asyncio")
    stamped = app.send_task("t.async_stamped", [21]).get(timeout=10)
    assert stamped == {"value": 42, "stamped_in": stamped["stamped_in"], "attempts": 1}
    assert isinstance(stamped["stamped_in"], int)  # the sync before_execute ran too
    assert app.send_task("t.stamped", [1]).get(timeout=10)["value"] == 2  # a sync run, in a thread


@pytest.mark.cluster
def test_reject_dead_letters_the_run_or_requeues_it_as_a_retry(
    start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    start_worker("threads")
    dead = app.send_task("t.reject", [False])
    wait_for(lambda: dead.state == states.DEAD)
    letters = r.xrange(layout.dead(layout.partition(dead.id), "default"))
    assert [f[b"id"].decode() for _e, f in letters] == [dead.id]
    assert "refused on try 0" in json.loads(letters[0][1][b"error"])["message"]
    again = app.send_task("t.reject", [True], countdown=0)
    with pytest.raises(Reject, match="refused on try 2"):  # requeued twice, then max_retries
        again.get(timeout=10)
    assert again.state == states.FAILURE


def test_max_memory_per_child_replaces_a_grown_child(start_worker: WorkerFactory, app: App) -> None:
    start_worker("prefork", "-c", "1", "--max-memory-per-child", "150")
    small = app.send_task("t.hog", [1]).get(timeout=10)
    grown = app.send_task("t.hog", [200]).get(timeout=10)  # now over 150 MB: it retires
    fresh = app.send_task("t.hog", [1]).get(timeout=10)
    assert small == grown != fresh
