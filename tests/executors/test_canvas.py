"""Chains on real workers: results passed on, failures carried down, killed workers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sdk import App, signature, states
from sdk.canvas import Signature
from tests.executors.conftest import WorkerFactory, wait_for


def sig(app: App, task: str, *args: object, immutable: bool = False) -> Signature:
    return signature(task, args, app=app, immutable=immutable)


@pytest.mark.cluster
def test_a_chain_passes_each_result_on(pool: str, start_worker: WorkerFactory, app: App) -> None:
    start_worker(pool)
    result = (sig(app, "t.add", 2, 2) | sig(app, "t.mul", 10) | sig(app, "t.add", 1))()
    assert result.get(timeout=10) == 41
    assert result.parent is not None and result.parent.get(timeout=1) == 40
    first = result.parent.parent
    assert first is not None and first.get(timeout=1) == 4
    run, middle = result.info(), result.parent.info()
    assert run is not None and middle is not None
    assert run["parent_id"] == result.parent.id and middle["parent_id"] == first.id
    assert run["root_id"] == middle["root_id"] == first.id


@pytest.mark.cluster
def test_a_failed_link_ends_the_later_links_with_its_error(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads")
    result = (
        sig(app, "t.add", 1, 1)
        | sig(app, "t.fail", "boom", immutable=True)
        | sig(app, "t.mul", 3)
        | sig(app, "t.add", 1)
    )()
    with pytest.raises(ValueError, match="boom"):  # the failing link's own exception
        result.get(timeout=10)
    assert result.state == states.FAILURE
    failed = result.parent.parent  # type: ignore[union-attr]
    assert failed is not None and failed.state == states.FAILURE
    assert failed.parent is not None and failed.parent.get(timeout=1) == 2
    run = result.info()
    assert run is not None and run["task"] == "t.add" and run["error"]["message"] == "boom"


def test_a_chain_survives_its_worker_killed_mid_link(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    fast = {"CELERIAC_WORKER_DEAD_AFTER": "1"}
    doomed = start_worker("prefork", "-c", "1", name="doomed", env=fast)
    marks = tmp_path / "starts"
    result = (sig(app, "t.touch", str(marks), 1.0) | sig(app, "t.add", "!"))()
    wait_for(marks.exists)
    os.killpg(doomed.pid, signal.SIGKILL)  # the whole tree, while the first link runs
    doomed.wait(5)
    start_worker("threads", name="survivor", env=fast)
    assert result.get(timeout=20) == f"{marks}!"
    first = result.parent
    assert first is not None and first.info()["attempts"] == 2  # type: ignore[index]
    assert result.info()["attempts"] == 1  # type: ignore[index]  # the next link: once
