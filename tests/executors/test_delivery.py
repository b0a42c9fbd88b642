"""At-least-once delivery: retries, dead letters, fresh claims and reclaiming dead workers."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from sdk import App, states
from sdk.protocol.keys import GROUP, Keys
from tests.conftest import Gateway
from tests.executors.conftest import WorkerFactory, wait_for


@pytest.mark.cluster
def test_retry_keeps_the_run_id_and_shows_retry_between_attempts(
    pool: str, start_worker: WorkerFactory, app: App
) -> None:
    start_worker(pool)
    result = app.send_task("t.flaky", [3])
    seen: set[str] = set()
    deadline = time.monotonic() + 10
    while not result.ready() and time.monotonic() < deadline:
        seen.add(result.state)
        time.sleep(0.01)
    assert result.get(timeout=1) == 2  # succeeded on its third attempt (two retries)
    assert states.RETRY in seen
    run = result.info()
    assert run is not None and run["attempts"] == 3 and run["error"] is None


@pytest.mark.cluster
def test_autoretry_backs_off_then_fails_with_the_original_error(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    marks = tmp_path / "attempts"
    with pytest.raises(ConnectionError, match="still down"):
        app.send_task("t.autoretry", [str(marks)]).get(timeout=15)
    times = [float(t) for t in marks.read_text().split()]
    assert len(times) == 3  # the first attempt and max_retries=2 more
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.1 * 2**retries, no jitter


@pytest.mark.cluster
def test_child_killed_every_time_goes_dead_after_max_deliveries(
    start_worker: WorkerFactory, app: App, r: redis.Redis, tmp_path: Path, layout: Keys
) -> None:
    start_worker("prefork", "-c", "1", env={"CELERIAC_MAX_DELIVERIES": "3"})
    marks = tmp_path / "deliveries"
    result = app.send_task("t.crash", [str(marks)])
    wait_for(lambda: result.state == states.DEAD, timeout=30)
    assert marks.read_text().count("x") == 3  # exactly one execution per delivery, no loop
    run = result.info()
    assert run is not None and run["attempts"] == 3
    assert run["error"]["type"] == "DeliveryLimitExceeded"
    letters = r.xrange(layout.dead(layout.partition(result.id), "default"))
    assert [f[b"id"].decode() for _, f in letters] == [result.id]
    time.sleep(1.0)
    assert marks.read_text().count("x") == 3  # and it never comes back


@pytest.mark.parametrize("pool_name", ["prefork", "asyncio"])
def test_a_long_run_on_a_live_worker_is_never_reclaimed(
    pool_name: str, start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    fast = {"CELERIAC_WORKER_DEAD_AFTER": "1"}
    start_worker(pool_name, "-c", "1", env=fast)
    start_worker("threads", "-c", "2", env=fast)  # an idle peer, eager to reclaim
    marks = tmp_path / "starts"
    task = "t.async_touch" if pool_name == "asyncio" else "t.touch"
    result = app.send_task(task, [str(marks), 3.5])  # 3.5x the reclaim idle time
    assert result.get(timeout=20) == str(marks)
    assert len(marks.read_text().split()) == 1
    assert result.info()["attempts"] == 1  # type: ignore[index]


@pytest.mark.cluster
def test_runs_of_a_dead_worker_are_reclaimed_by_a_live_one(
    start_worker: WorkerFactory, app: App, r: redis.Redis, tmp_path: Path
) -> None:
    fast = {"CELERIAC_WORKER_DEAD_AFTER": "1"}
    doomed = start_worker("prefork", "-c", "1", name="doomed", env=fast)
    marks = tmp_path / "starts"
    result = app.send_task("t.touch", [str(marks), 1.0])
    wait_for(marks.exists)
    os.killpg(doomed.pid, signal.SIGKILL)  # the whole tree, mid-run
    doomed.wait(5)
    killed_at = time.monotonic()
    start_worker("threads", name="survivor", env=fast)
    assert result.get(timeout=20) == str(marks)
    assert time.monotonic() - killed_at < 10
    run = result.info()
    assert run is not None and run["worker"] == "survivor" and run["attempts"] == 2
    assert marks.read_text().split()[0] != marks.read_text().split()[1]  # another process


@pytest.mark.cluster
def test_a_run_queued_without_a_record_can_still_retry(
    start_worker: WorkerFactory, app: App, r: redis.Redis, layout: Keys
) -> None:
    """A producer in another language may XADD only; its retries must still be queued."""
    from sdk.calls import Call, SendOptions, build_submission
    from sdk.protocol import encode_envelope
    from sdk.serializers import Codec

    sub = build_submission(
        Call("t.flaky", [2], {}, SendOptions()),
        Codec(),
        default_queue="default",
        content_type="application/json",
    )
    stream = layout.stream(layout.partition(sub.message.id), "default", 5)
    r.xadd(stream, {"env": encode_envelope(sub.message), "body": sub.body})
    start_worker("threads")
    result = app.AsyncResult(sub.message.id)
    assert result.get(timeout=10) == 1  # succeeded on its retry
    assert app.send_task("t.add", [1, 1], countdown=0.2).get(timeout=10) == 2  # promote works


def test_an_entry_of_another_protocol_version_is_left_pending_not_dropped(
    start_worker: WorkerFactory, app: App, r: redis.Redis
) -> None:
    """A rolling upgrade: a newer producer's run must wait for a newer worker."""
    stream = Keys().stream(0, "default", 5)
    newer = b'{"v":2,"id":"run-of-v2","task":"t.add","queue":"default","priority":"high"}'
    start_worker("threads", "-c", "1")
    r.xadd(stream, {"env": newer, "body": b'{"args":[1,2]}'})
    r.xadd(stream, {"env": b"not an envelope", "body": b""})
    assert app.send_task("t.add", [2, 3]).get(timeout=10) == 5  # queued after both
    [(entry_id, fields)] = r.xrange(stream)  # the malformed one was dropped, this one kept
    assert fields[b"env"] == newer
    pending = r.xpending_range(stream, GROUP, min="-", max="+", count=10)
    assert [row["message_id"] for row in pending] == [entry_id]


@pytest.mark.cluster
def test_revoke_without_terminate_lets_a_running_run_finish(
    start_worker: WorkerFactory, app: App, tmp_path: Path
) -> None:
    start_worker("threads")
    release = tmp_path / "release"
    result = app.send_task("t.custom_state", [str(release)])
    wait_for(lambda: result.state == "DOWNLOADING")
    result.revoke()  # a custom state is running, not queued: it is not cut short
    release.touch()
    assert result.get(timeout=10) == "downloaded"


@pytest.mark.cluster
def test_dead_letters_are_listed_and_requeued_over_http(
    start_worker: WorkerFactory,
    app: App,
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    tmp_path: Path,
) -> None:
    start_worker("prefork", "-c", "1", env={"CELERIAC_MAX_DELIVERIES": "1"})
    marks = tmp_path / "deliveries"
    dead = app.send_task("t.crash", [str(marks)])
    wait_for(lambda: dead.state == states.DEAD, timeout=30)
    http = make_gateway(redis_url=redis_url).client
    listed = http.get("/dead-letters").json()
    assert [run["id"] for run in listed["items"]] == [dead.id]
    assert listed["items"][0]["error"]["type"] == "DeliveryLimitExceeded"
    assert http.get("/dead-letters?limit=0").status_code == 400
    alive = app.send_task("t.add", [1, 1])
    alive.get(timeout=10)
    assert http.post(f"/dead-letters/{alive.id}/requeue").status_code == 409
    assert http.post("/dead-letters/nope/requeue").status_code == 404
    marks.unlink()
    assert http.post(f"/dead-letters/{dead.id}/requeue").status_code == 202
    wait_for(lambda: marks.exists() and dead.state == states.DEAD, timeout=30)  # ran again
    assert marks.read_text().count("x") == 1
    assert [run["id"] for run in http.get("/dead-letters").json()["items"]] == [dead.id]
