"""Priorities: higher first, across queues, without starving lower ones."""

from __future__ import annotations

from pathlib import Path

from sdk import App
from tests.executors.conftest import WorkerFactory


def test_higher_priority_runs_first_and_lower_ones_still_run(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    journal = tmp_path / "order"
    low = [app.send_task("t.order", [str(journal), "low"], priority=1) for _ in range(30)]
    high = [
        app.send_task("t.order", [str(journal), "high"], priority=9, queue="urgent")
        for _ in range(30)
    ]
    start_worker("threads", "-c", "1", "--prefetch", "1", "-Q", "default,urgent")
    for result in low + high:
        result.get(timeout=20)
    seen = journal.read_text().split()
    assert len(seen) == 60 and seen.count("low") == 30  # nothing starved or lost
    first = seen[:30]
    # Strict priority, but every 10th fetch serves each non-empty priority once.
    assert first.count("high") >= 26, first
    assert "low" in first  # the backlog of urgent runs did not starve the low ones
