"""Chains on real workers: results passed on, failures carried down, killed workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sdk import App, GroupResult, chord, group, signature, states
from sdk.canvas import Signature
from sdk.errors import TaskError, TaskRevoked
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


# -- groups and chords -------------------------------------------------------------------------
@pytest.mark.cluster
def test_a_group_of_100_returns_its_results_in_order(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    result = group(sig(app, "t.add", i, i) for i in range(100))()
    assert result.get(timeout=20) == [2 * i for i in range(100)]
    assert result.ready() and result.successful() and result.completed_count() == 100
    restored = GroupResult.restore(result.save().id, app)
    assert restored is not None and [r.id for r in restored] == [r.id for r in result]


@pytest.mark.cluster
def test_a_chord_of_1000_gives_its_body_every_result_in_order(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads", "-c", "8")
    marks = tmp_path / "body"
    header = [sig(app, "t.add", i, i) for i in range(1000)]
    result = chord(header, sig(app, "t.count_into", str(marks)))()
    assert result.get(timeout=30) == 999000
    assert marks.read_text() == "x"  # the body ran once
    assert isinstance(result.parent, GroupResult) and len(result.parent) == 1000
    assert (group(sig(app, "t.add", i, 1) for i in range(3)) | sig(app, "t.xsum", 10))().get(
        timeout=10
    ) == 16  # group | body is a chord; the body's own args come after the results


@pytest.mark.cluster
def test_a_failing_header_member_fails_the_chord_naming_it(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    marks = tmp_path / "body"
    header = [sig(app, "t.add", 1, 1), sig(app, "t.fail", "boom"), sig(app, "t.add", 2, 2)]
    result = chord(header, sig(app, "t.count_into", str(marks)))()
    with pytest.raises(
        TaskError, match=r"chord member 1 \(t\.fail .*\) ended FAILURE: ValueError: boom"
    ):
        result.get(timeout=10)
    assert result.parent is not None and result.parent.get(timeout=5, propagate=False)[0] == 2
    assert not marks.exists()  # the body never ran


def test_a_retried_chord_body_gets_the_results_once_more(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)  # each consumer keeps the body without the results for the retry
    header = [sig(app, "t.add", i, i) for i in range(10)]
    result = chord(header, sig(app, "t.sum_on_second_try"))()
    assert result.get(timeout=10) == 90
    assert result.info()["attempts"] == 2  # type: ignore[index]


def test_a_chord_with_an_empty_header_runs_its_body_with_no_results(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads")
    assert chord([], sig(app, "t.xsum", 5))().get(timeout=10) == 5


# -- callbacks ---------------------------------------------------------------------------------
@pytest.mark.cluster
def test_link_runs_with_the_result_and_link_error_with_the_failed_id(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    good, bad = tmp_path / "good", tmp_path / "bad"
    ok = sig(app, "t.add", 2, 2).apply_async(
        link=sig(app, "t.record_into", str(good)), link_error=sig(app, "t.record_into", str(bad))
    )
    failing = sig(app, "t.fail", "boom").on_error(sig(app, "t.record_into", str(bad))).delay()
    assert ok.get(timeout=10) == 4
    with pytest.raises(ValueError, match="boom"):
        failing.get(timeout=10)
    wait_for(lambda: good.exists() and bad.exists())
    time.sleep(0.3)  # a second callback run, if there were one
    assert good.read_text() == "4\n"  # link only on success, once
    assert bad.read_text() == f"{failing.id}\n"  # link_error only on failure, once


def test_a_chains_link_follows_its_last_link_and_link_error_the_failing_one(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    good, bad = tmp_path / "good", tmp_path / "bad"
    done = (sig(app, "t.add", 1, 1) | sig(app, "t.mul", 5)).apply_async(
        link=sig(app, "t.record_into", str(good))
    )
    assert done.get(timeout=10) == 10
    broken = (
        sig(app, "t.add", 1, 1) | sig(app, "t.fail", "x", immutable=True) | sig(app, "t.add", 1)
    )
    failed = broken.apply_async(link_error=sig(app, "t.record_into", str(bad)))
    with pytest.raises(ValueError):
        failed.get(timeout=10)
    wait_for(lambda: good.exists() and bad.exists())
    time.sleep(0.3)
    assert good.read_text() == "10\n"
    assert failed.parent is not None and bad.read_text() == f"{failed.parent.id}\n"


def test_map_starmap_and_chunks_on_a_worker(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    assert signature("celeriac.starmap", ("t.add", [[1, 2], [3, 4]]), app=app).delay().get(
        timeout=10
    ) == [3, 7]
    assert signature("celeriac.map", ("t.xsum", [[1, 2], [3]]), app=app).delay().get(
        timeout=10
    ) == [3, 3]
    missing = signature("celeriac.map", ("t.nope", [1]), app=app).delay()
    with pytest.raises(Exception, match=r"t\.nope"):
        missing.get(timeout=10)


@pytest.mark.cluster
def test_revoking_a_queued_chain_link_ends_the_links_after_it(
    app: App, start_worker: WorkerFactory
) -> None:
    result = (sig(app, "t.add", 1, 1) | sig(app, "t.mul", 2) | sig(app, "t.add", 3))()
    first = result.parent.parent  # type: ignore[union-attr]
    assert first is not None
    first.revoke()  # no worker yet: the first link is queued, the others not submitted
    with pytest.raises(TaskRevoked):
        result.get(timeout=5)
    assert result.parent is not None and result.parent.state == states.REVOKED
    start_worker("threads")  # the first link's entry is only acknowledged: nothing runs
    time.sleep(0.5)
    assert result.state == states.REVOKED and first.state == states.REVOKED


# -- nested forms ------------------------------------------------------------------------------
@pytest.mark.cluster
def test_a_group_inside_a_chain_is_a_chord_of_the_step_after_it(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    fan = group(sig(app, "t.add", i) for i in range(5))  # each given the result before
    result = (sig(app, "t.add", 1, 1) | fan | sig(app, "t.xsum") | sig(app, "t.mul", 10))()
    assert result.get(timeout=10) == 200  # (2+0 + 2+1 + ... + 2+4) * 10
    total = result.parent
    assert total is not None and total.get(timeout=1) == 20
    header = total.parent
    assert isinstance(header, GroupResult) and header.get(timeout=1) == [2, 3, 4, 5, 6]
    assert header.parent is not None and header.parent.get(timeout=1) == 2


def test_a_chain_ending_with_a_group_gives_the_groups_result(
    start_worker: WorkerFactory, app: App
) -> None:
    start_worker("threads")
    result = (sig(app, "t.add", 2, 3) | group(sig(app, "t.mul", i) for i in range(4)))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=10) == [0, 5, 10, 15]
    assert result.parent is not None and result.parent.get(timeout=1) == 5


@pytest.mark.cluster
def test_a_chord_inside_a_chain_and_chains_in_its_header(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    header = [sig(app, "t.add", i) | sig(app, "t.mul", 2) for i in range(3)]  # chains
    inner = chord(header, sig(app, "t.xsum"))
    result = (sig(app, "t.add", 1, 0) | inner | sig(app, "t.add", 1))()
    assert result.get(timeout=10) == 13  # (1+0)*2 + (1+1)*2 + (1+2)*2 + 1
    given = [sig(app, "t.add", i, 1) | sig(app, "t.mul", 2) for i in range(3)]
    assert chord(given, sig(app, "t.xsum")).delay(100).get(timeout=10) == 2 + 4 + 6 + 100


def test_a_failing_link_of_a_header_chain_fails_the_chord_and_its_link_error_once(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    marks, errors = tmp_path / "body", tmp_path / "errors"
    header = [
        sig(app, "t.add", 1, 1),
        sig(app, "t.fail", "boom") | sig(app, "t.add", 1),  # never reaches its last link
        sig(app, "t.fail", "again"),
    ]
    body = sig(app, "t.count_into", str(marks)).on_error(sig(app, "t.record_into", str(errors)))
    result = (chord(header, body) | sig(app, "t.add", 1))()
    with pytest.raises(TaskError, match=r"chord member [12] \(t\.fail .*\) ended FAILURE"):
        result.get(timeout=10)
    chord_body = result.parent
    assert chord_body is not None and chord_body.state == states.FAILURE
    wait_for(errors.exists)
    time.sleep(0.3)  # a second errback run, if there were one
    assert errors.read_text() == f"{chord_body.id}\n"  # once, given the chord body's id
    assert not marks.exists()  # the body never ran


# -- revoking workflows ------------------------------------------------------------------------
def test_a_revoked_queued_header_run_fails_the_chord_and_runs_its_errback_once(
    app: App, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    errors, marks = tmp_path / "errors", tmp_path / "body"
    header = [
        sig(app, "t.add", i, i).on_error(sig(app, "t.record_into", str(errors))) for i in range(3)
    ]
    result = chord(header, sig(app, "t.count_into", str(marks)))()
    assert isinstance(result.parent, GroupResult)
    doomed = result.parent.results[1]
    doomed.revoke()  # no worker yet: queued, so it ends now, counted in its chord
    assert doomed.state == states.REVOKED
    start_worker("threads")
    with pytest.raises(TaskError, match=r"chord member 1 \(t\.add .*\) ended REVOKED"):
        result.get(timeout=10)  # not a hang: the revoked run counts as the chord's failure
    wait_for(errors.exists)
    time.sleep(0.3)
    assert errors.read_text() == f"{doomed.id}\n" and not marks.exists()


@pytest.mark.cluster
def test_revoking_a_chains_result_revokes_its_pending_links(
    app: App, start_worker: WorkerFactory
) -> None:
    fan = group(sig(app, "t.add", i) for i in range(3))
    result = (sig(app, "t.add", 1, 1) | fan | sig(app, "t.xsum") | sig(app, "t.add", 1))()
    result.revoke()  # the last link's result: every run before it, queued or not yet sent
    start_worker("threads")
    with pytest.raises(TaskRevoked):
        result.get(timeout=10)
    total = result.parent
    assert total is not None and isinstance(total.parent, GroupResult)
    first = total.parent.parent
    assert first is not None
    time.sleep(0.3)  # a worker that would run any of them has had the time to
    assert first.state == total.state == states.REVOKED
    assert not first.info()["attempts"]  # type: ignore[index]  # never started
    grouped = group(sig(app, "t.slow_add", i, i, 0.2) for i in range(20))()
    grouped.revoke()  # those not started never do; a finished one is left as it is
    states_seen = {r.state for r in grouped.results}
    wait_for(lambda: grouped.ready())
    assert {r.state for r in grouped.results} <= {states.REVOKED, states.SUCCESS}
    assert states.REVOKED in {r.state for r in grouped.results}, states_seen
