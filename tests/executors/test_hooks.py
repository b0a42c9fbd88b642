"""Task base classes with hooks, and replacing a child that grew too big."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk import App
from tests.executors.conftest import WorkerFactory


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


def test_max_memory_per_child_replaces_a_grown_child(start_worker: WorkerFactory, app: App) -> None:
    start_worker("prefork", "-c", "1", "--max-memory-per-child", "150")
    small = app.send_task("t.hog", [1]).get(timeout=10)
    grown = app.send_task("t.hog", [200]).get(timeout=10)  # now over 150 MB: it retires
    fresh = app.send_task("t.hog", [1]).get(timeout=10)
    assert small == grown != fresh
