"""A chord's body runs exactly once, with every header result, through killed workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sdk import App, chord, signature, states
from tests.executors.conftest import WorkerFactory
from tests.reliability.conftest import scale

FAST = {"CELERIAC_WORKER_DEAD_AFTER": "1"}


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("pool_name", ["prefork", "threads"])
def test_a_chord_survives_its_worker_tree_killed_twice_during_the_header(
    pool_name: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    size = scale(full=1_000, ci=300)
    marks = tmp_path / "body"
    header = [signature("t.slow_add", (i, i, 0.02), app=app) for i in range(size)]
    result = chord(header, signature("t.count_into", (str(marks),), app=app))()
    extra = ("-c", "4", "--prefetch", "8")
    worker = start_worker(pool_name, *extra, env=FAST)
    for kill in range(2):
        time.sleep(0.4)
        assert result.state != states.SUCCESS  # still in the header
        os.killpg(worker.pid, signal.SIGKILL)  # the whole tree, mid-header
        worker.wait(10)
        worker = start_worker(pool_name, *extra, name=f"chord-chaos-{kill}", env=FAST)
    assert result.get(timeout=180) == size * (size - 1)  # sum of 2i over the header
    time.sleep(0.5)  # a second body run, if there were one, has had time to write
    assert marks.read_text() == "x"  # the body ran exactly once
    header_result = result.parent
    assert header_result is not None and header_result.completed_count() == size
    attempts = [(r.info() or {}).get("attempts", 0) for r in header_result]
    assert max(attempts) >= 2  # members were killed mid-run and ran again: counted once
