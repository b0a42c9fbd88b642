"""/schedules over HTTP with a real scheduler process: changes take effect within a second
and survive restarting every process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from gateway.scheduler.model import fire_ms_of
from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import history, register
from tests.schedulers import SchedulerFactory, leader, start_scheduler, wait_for

__all__ = ["start_scheduler"]
KEYS = Keys()
CELERIAC = [sys.executable, "-m", "sdk.cli"]


def tick(x: int = 0) -> int:
    return x


def runs_of(r: redis.Redis, task: str) -> list[str]:
    """Ids of the runs of ``task`` in Redis, oldest fire first."""
    return sorted(i for i in history(r) if r.hget(KEYS.run(i), "task") == task.encode())


@pytest.fixture
def task(r: redis.Redis) -> str:
    return register(r, tick, name="sched.tick")


def every_second(client: httpx.Client, task: str, **extra: Any) -> dict[str, Any]:
    body = {"id": "tick", "task": task, "trigger": {"type": "interval", "seconds": 1}, **extra}
    answer = client.post("/schedules", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def count_in(r: redis.Redis, task: str, seconds: float) -> int:
    before = len(runs_of(r, task))
    time.sleep(seconds)
    return len(runs_of(r, task)) - before


def test_lifecycle_takes_effect_within_a_second_and_survives_restarts(
    r: redis.Redis,
    redis_url: str,
    task: str,
    make_gateway: Callable[..., Gateway],
    start_scheduler: SchedulerFactory,
) -> None:
    gw = make_gateway(redis_url=redis_url)
    scheduler = start_scheduler()
    wait_for(lambda: leader(r), 10, "a scheduler leads")
    created = every_second(gw.client, task, kwargs={"x": 1})
    assert created["links"]["self"] == "/schedules/tick" and created["enabled"] is True
    wait_for(lambda: len(runs_of(r, task)) >= 2, 4, "two runs")  # first fire 1 s after create

    paused = gw.client.post("/schedules/tick/pause")
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    assert paused.json()["next_run_at"] is None
    time.sleep(1.0)  # a fire already in flight may still land
    assert count_in(r, task, 2.0) == 0

    resumed = gw.client.post("/schedules/tick/resume")
    assert resumed.status_code == 200 and resumed.json()["enabled"] is True
    wait_for(lambda: count_in(r, task, 0.5) > 0, 3, "runs after resume")

    patched = gw.client.patch("/schedules/tick", json={"kwargs": {"x": 7}})
    assert patched.status_code == 200 and patched.json()["kwargs"] == {"x": 7}
    time.sleep(1.5)
    newest = runs_of(r, task)[-1]
    assert b'"x":7' in r.hget(KEYS.run(newest), "body")  # type: ignore[operator]

    # Restart everything: the schedule and its state are in Redis.
    gw.stop()
    scheduler.terminate()
    assert scheduler.wait(10) == 0
    assert leader(r) is None  # SIGTERM released the lease
    gw = make_gateway(redis_url=redis_url)
    start_scheduler()
    shown = gw.client.get("/schedules/tick").json()
    assert shown["kwargs"] == {"x": 7} and shown["last_run_id"] in runs_of(r, task)
    assert shown["links"]["last_run"] == f"/runs/{shown['last_run_id']}"
    wait_for(lambda: count_in(r, task, 0.5) > 0, 8, "runs after restart")

    fires = [fire_ms_of(i) for i in runs_of(r, task)]
    assert len(fires) == len(set(fires))

    assert gw.client.delete("/schedules/tick").status_code == 204
    time.sleep(1.0)
    assert count_in(r, task, 2.0) == 0
    assert gw.client.get("/schedules/tick").status_code == 404


def test_cron_in_a_time_zone_shows_next_local_monday(
    r: redis.Redis, task: str, client: httpx.Client
) -> None:
    body = {
        "id": "monday",
        "task": task,
        "trigger": {"type": "cron", "expr": "30 7 * * 1", "timezone": "Asia/Shanghai"},
    }
    created = client.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    # Independently: the next Monday 07:30 in Shanghai, strictly after now.
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    expected = now.replace(hour=7, minute=30, second=0, microsecond=0)
    expected += timedelta(days=(0 - now.weekday()) % 7)
    if expected <= now:
        expected += timedelta(days=7)
    want = expected.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert created.json()["next_run_at"] == want
    listed = client.get("/schedules").json()
    assert listed["next"] is None and listed["items"][0]["next_run_at"] == want
    assert listed["items"][0]["trigger"]["timezone"] == "Asia/Shanghai"


def test_time_zone_defaults_to_the_setting(
    r: redis.Redis, redis_url: str, task: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(redis_url=redis_url, timezone="Europe/Paris")
    body = {"task": task, "trigger": {"type": "cron", "expr": "0 9 * * *"}}
    created = gw.client.post("/schedules", json=body).json()
    assert created["trigger"]["timezone"] == "Europe/Paris"
    assert created["next_run_at"].endswith(("T07:00:00.000Z", "T08:00:00.000Z"))


@pytest.mark.parametrize(
    ("trigger", "reason"),
    [
        ({"type": "cron", "expr": "61 * * * *"}, "cron"),
        ({"type": "cron", "expr": "* * * *"}, "5 fields"),
        ({"type": "cron", "expr": "0 7 * * *", "timezone": "Mars/Olympus"}, "time zone"),
        ({"type": "interval", "seconds": 0}, "more than 0"),
        ({"type": "interval", "seconds": -5}, "more than 0"),
        ({"type": "interval", "seconds": "ten"}, "invalid schedule"),
        ({"type": "weekly"}, "invalid schedule"),
        ({"type": "date", "run_at": "tomorrow"}, "ISO 8601"),
    ],
)
def test_invalid_triggers_are_422_with_the_reason(
    task: str, client: httpx.Client, trigger: dict[str, Any], reason: str
) -> None:
    answer = client.post("/schedules", json={"task": task, "trigger": trigger})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_schedule"
    assert reason in answer.json()["error"]["message"]


def test_unknown_task_bad_args_malformed_json_and_unknown_ids(
    task: str, client: httpx.Client
) -> None:
    every = {"type": "interval", "seconds": 10}
    unknown = client.post("/schedules", json={"task": "no.such", "trigger": every})
    assert unknown.status_code == 422 and "no.such" in unknown.json()["error"]["message"]
    bad_args = client.post("/schedules", json={"task": task, "args": [1, 2], "trigger": every})
    assert bad_args.status_code == 422
    malformed = client.post(
        "/schedules", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    for method, path in [
        ("GET", "/schedules/nope"),
        ("PATCH", "/schedules/nope"),
        ("DELETE", "/schedules/nope"),
        ("POST", "/schedules/nope/pause"),
        ("POST", "/schedules/nope/run"),
    ]:
        answer = client.request(method, path, json={} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path)
    created = client.post("/schedules", json={"id": "a", "task": task, "trigger": every})
    assert created.status_code == 201
    again = client.post("/schedules", json={"id": "a", "task": task, "trigger": every})
    assert again.status_code == 409
    bad_patch = client.patch("/schedules/a", json={"trigger": {"type": "interval", "seconds": 0}})
    assert bad_patch.status_code == 422


def test_run_now_answers_202_with_the_run(r: redis.Redis, task: str, client: httpx.Client) -> None:
    every = {"type": "interval", "hours": 1}
    client.post("/schedules", json={"id": "h", "task": task, "trigger": every, "args": [3]})
    answer = client.post("/schedules/h/run")
    assert answer.status_code == 202
    run = answer.json()
    assert run["task"] == task and answer.headers["location"] == f"/runs/{run['id']}"
    assert client.get(f"/runs/{run['id']}").status_code == 200
    shown = client.get("/schedules/h").json()
    assert shown["last_run_id"] == run["id"] and shown["last_run_at"] is not None


def test_cli_add_list_pause_run_rm(redis_url: str, task: str, gw: Gateway) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*CELERIAC, "schedules", "--gateway-url", gw.url, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)

    added = cli("add", "--task", task, "--every", "10s", "--id", "cli-one")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "cli-one"
    cron = cli("add", "--task", task, "--cron", "30 7 * * 1", "--tz", "Asia/Shanghai")
    assert cron.returncode == 0, cron.stderr
    listed = cli("list")
    assert "cli-one" in listed.stdout and "every 10s" in listed.stdout
    assert cli("pause", "cli-one").returncode == 0
    assert '"enabled": false' in cli("list", "--json").stdout
    assert cli("run", "cli-one").returncode == 0
    assert cli("rm", "cli-one").returncode == 0
    bad = cli("add", "--task", task, "--cron", "nope")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "5 fields" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    direct = subprocess.run(
        [*CELERIAC, "schedules", "--redis-url", redis_url, "list", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert direct.returncode == 0 and '"next": null' in direct.stdout
