"""GET /events: Server-Sent Events read through a real gateway socket."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from executors import heartbeat
from gateway.waiters import WaitHub
from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import event_ids, finish, register

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster

Event = dict[str, Any]


def add(x: int, y: int) -> int:
    return x + y


def read_events(
    gw: Gateway,
    count: int,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    then: Callable[[], None] | None = None,
    timeout: float = 10.0,
) -> list[Event]:
    """The first ``count`` events of one /events connection (``then`` runs once it is open)."""
    events: list[Event] = []
    current: Event = {}
    timer = threading.Timer(0.3, then) if then is not None else None
    with (
        httpx.Client(base_url=gw.url, timeout=timeout) as client,
        client.stream("GET", "/events", params=params, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        if timer is not None:
            timer.start()
        for line in resp.iter_lines():
            if line == "" and current:
                events.append(current)
                current = {}
                if len(events) == count:
                    if timer is not None:  # its event may arrive before its own answer
                        timer.join(timeout)
                    return events
            elif ":" in line and not line.startswith(":"):
                name, _, value = line.partition(":")
                current[name] = json.loads(value.strip()) if name == "data" else value.strip()
    raise AssertionError(f"stream ended after {len(events)} events")


def sse_ids(keys: Keys, entries: list[tuple[int, str]]) -> list[str]:
    """The SSE id after each entry (partition, entry id), from the streams' start: the
    position in every partition (with one, the entry id alone)."""
    at = ["0-0"] * keys.partitions
    ids = []
    for part, entry_id in entries:
        at[part] = entry_id
        ids.append(",".join(at))
    return ids


def test_run_lifecycle_is_streamed_live(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    gw = pgw
    register(r, add)
    made: list[str] = []

    def lifecycle() -> None:
        made.append(gw.client.post("/tasks/add", json={"args": [1, 2]}).json()["id"])
        finish(r, made[0], keys=keys)

    events = read_events(gw, 2, params={"task": "add"}, then=lifecycle)
    assert [e["event"] for e in events] == ["run", "run"]
    assert [e["data"]["state"] for e in events] == ["PENDING", "SUCCESS"]
    assert [e["id"] for e in events] == sse_ids(keys, event_ids(r, keys))
    done = events[1]["data"]
    assert done["id"] == made[0] and done["task"] == "add" and done["queue"] == "default"
    assert "result" not in done and done["finished_at"].endswith("Z")


def test_last_event_id_resumes_and_filters(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    gw = pgw
    register(r, add)
    ids = [gw.client.post("/tasks/add", json={"args": [i, i]}).json()["id"] for i in range(6)]
    for run_id in ids[:3]:
        finish(r, run_id, keys=keys)
    entries = sse_ids(keys, event_ids(r, keys))[3:]  # from the 4th PENDING: 3 more, 3 SUCCESS
    resumed = read_events(gw, 4, headers={"Last-Event-ID": entries[1]})
    assert [e["id"] for e in resumed] == entries[2:]
    only = read_events(gw, 2, params={"run": ids[1]}, headers={"Last-Event-ID": "0-0"})
    assert [(e["data"]["id"], e["data"]["state"]) for e in only] == [
        (ids[1], "PENDING"),
        (ids[1], "SUCCESS"),
    ]
    # the backlog first, then live events, with nothing lost or repeated between the two
    late: list[str] = []
    both = read_events(
        gw,
        6,
        headers={"Last-Event-ID": entries[0]},
        then=lambda: late.append(gw.client.post("/tasks/add", json={"args": [9, 9]}).json()["id"]),
    )
    assert [e["id"] for e in both[:5]] == entries[1:]
    assert both[5]["data"]["id"] == late[0] and both[5]["data"]["state"] == "PENDING"
    # where the live event leaves the client: its partition moved on, the others did not
    assert both[5]["id"] == sse_ids(keys, event_ids(r, keys))[-1]


def test_worker_events(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    info = heartbeat.WorkerInfo("w-events", "threads", 2, ["default"], [])
    counters = heartbeat.Counters(2)

    def lifecycle() -> None:
        heartbeat.beat(r, keys, info, counters)
        heartbeat.beat(r, keys, info, counters)  # only the first beat is an event
        heartbeat.unregister(r, keys, info.id)

    events = read_events(pgw, 2, params={"kind": "worker"}, then=lifecycle)
    assert [(e["event"], e["data"]["state"]) for e in events] == [
        ("worker", "online"),
        ("worker", "offline"),
    ]
    assert events[0]["data"]["id"] == "w-events" and events[0]["data"]["pool"] == "threads"


def test_bad_requests_and_disconnects(pgw: Gateway, keys: Keys) -> None:
    gw = pgw
    assert gw.client.get("/events", params={"kind": "x"}).status_code == 400
    several = ",".join(["1-0"] * (keys.partitions + 1))  # one stream id too many
    for bad in ("nope", "1-x", "0--1", several, "1-0,,1-0"):
        assert gw.client.get("/events", headers={"Last-Event-ID": bad}).status_code == 400, bad
    hubs = [o for o in gc.get_objects() if isinstance(o, WaitHub) and o.subscribers == 0]
    with httpx.Client(base_url=gw.url, timeout=5) as client:
        for _ in range(3):
            with client.stream("GET", "/events") as resp:
                assert resp.status_code == 200
                deadline = time.monotonic() + 5
                while not any(h.subscribers for h in hubs) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert any(h.subscribers for h in hubs)
    deadline = time.monotonic() + 5
    while any(h.subscribers for h in hubs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(h.subscribers for h in hubs)  # every closed client was let go
