"""Shared rate limits, custom states, and rate-limit validation at import."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sdk import App, states
from tests.executors.conftest import WorkerFactory


@pytest.mark.cluster
def test_rate_limit_is_shared_by_all_workers(start_worker: WorkerFactory, app: App) -> None:
    start_worker("threads", "-c", "4")
    start_worker("prefork", "-c", "2")
    started = time.monotonic()
    results = [app.send_task("t.limited_rate", []) for _ in range(100)]
    stamps = sorted(r.get(timeout=30) for r in results)
    elapsed = time.monotonic() - started
    # 20/s over 100 runs cannot take less than 99 intervals of 50 ms, whatever the workers.
    assert elapsed >= 4.5, elapsed
    assert stamps[-1] - stamps[0] >= 4.5


@pytest.mark.cluster
def test_update_state_shows_progress_and_meta(
    pool: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker(pool)
    release = tmp_path / "release"
    result = app.send_task("t.progress", [str(release)])
    deadline = time.monotonic() + 10
    while result.state != states.PROGRESS and time.monotonic() < deadline:
        time.sleep(0.01)
    run = result.info()
    assert run is not None and run["state"] == states.PROGRESS
    assert run["meta"] == {"done": 1, "of": 2}
    release.touch()
    assert result.get(timeout=10) == "finished"


@pytest.mark.parametrize("rate", ["fast", "10/d", "-1/s", "0"])
def test_bad_rate_limit_is_an_error_at_import(rate: str) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        App("t").task(rate_limit=rate)(lambda: None)
