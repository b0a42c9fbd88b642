"""``celeriac dev`` end to end: embedded Valkey, gateway and worker as real processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(180)


def test_dev_runs_a_task_and_stops_cleanly_on_ctrl_c(start_dev: Any, tmp_path: Path) -> None:
    dev = start_dev(tmp_path / "data")
    dev.wait_ready()

    response = dev.http.post("/tasks/examples.add", json={"args": [2, 3]})
    assert response.status_code == 202, response.text
    run = dev.wait_run(response.json()["id"], wait=10)
    assert run["state"] == "SUCCESS", run
    assert run["result"] == 5

    assert dev.interrupt(timeout=30) == 0, dev.output()
    out = dev.output()
    assert dev.url in out  # the banner
    assert "Traceback" not in out
    assert (tmp_path / "data" / "redis").is_dir()


def test_queued_runs_survive_killing_everything(start_dev: Any, tmp_path: Path) -> None:
    """Runs accepted (202) but not yet executed are still there after a crash of the
    whole tree, embedded server included: the next ``celeriac dev`` runs them (AOF)."""
    data = tmp_path / "data"
    first = start_dev(data, "-Q", "nobody-consumes-this")  # the worker ignores `default`
    first.wait_ready()
    ids = [first.submit("examples.add", args=[i, i]) for i in range(10)]
    batch = first.http.post(
        "/tasks/examples.mul/batch", json={"items": [{"args": [i, 10]} for i in range(20)]}
    )
    assert batch.status_code == 202, batch.text
    batch_ids = batch.json()["ids"]
    assert first.wait_run(ids[0], wait=0)["state"] == "PENDING"
    first.kill_all()

    second = start_dev(data)
    second.wait_ready()
    for i, run_id in enumerate(ids):
        run = second.wait_run(run_id, wait=30)
        assert (run["state"], run["result"]) == ("SUCCESS", i + i), run
    for i, run_id in enumerate(batch_ids):
        run = second.wait_run(run_id, wait=30)
        assert (run["state"], run["result"]) == ("SUCCESS", i * 10), run
    assert second.interrupt() == 0, second.output()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_runs_in_flight_survive_killing_everything(start_dev: Any, tmp_path: Path) -> None:
    """Runs that had started (or were prefetched) when everything died are reclaimed
    from the dead worker once its heartbeat lapses, and finish after the restart."""
    data = tmp_path / "data"
    first = start_dev(data, "-c", "2")
    first.wait_ready()
    sleeping = [first.submit("examples.sleep", args=[2]) for _ in range(2)]
    queued = [first.submit("examples.add", args=[i, 1]) for i in range(10)]
    deadline = time.monotonic() + 20
    while any(first.wait_run(r, wait=0)["state"] != "STARTED" for r in sleeping):
        assert time.monotonic() < deadline, "the sleeps never started"
        time.sleep(0.1)
    first.kill_all()  # both threads busy, the adds queued or prefetched

    second = start_dev(data, "-c", "2")
    second.wait_ready()
    for run_id in sleeping:
        run = second.wait_run(run_id, wait=60)
        if run["state"] != "SUCCESS":
            run = second.wait_run(run_id, wait=60)
        assert (run["state"], run["result"]) == ("SUCCESS", 2), run
    for i, run_id in enumerate(queued):
        run = second.wait_run(run_id, wait=60)
        assert (run["state"], run["result"]) == ("SUCCESS", i + 1), run
    assert second.interrupt() == 0, second.output()
