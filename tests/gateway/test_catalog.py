"""GET /tasks and GET /tasks/{name}: the catalog executors registered, with live workers."""

from __future__ import annotations

import httpx
import redis

from tests.gateway.conftest import KEYS, add_worker, register


def add(x: int, y: int = 1) -> int:
    """Add two numbers."""
    return x + y


def ping() -> str:
    return "pong"


def test_list_tasks_counts_live_workers(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add, queue="math")
    register(r, ping)
    add_worker(r, "w1", ["add", "ping"])
    add_worker(r, "w2", ["add"])
    add_worker(r, "w3", ["add", "ping"], age_ms=60_000)  # heartbeat lapsed: dead
    r.hset(KEYS.workers, "junk", b"not json")
    resp = client.get("/tasks")
    assert resp.status_code == 200
    data = resp.json()
    assert data["next"] is None
    assert [(t["name"], t["workers"]) for t in data["items"]] == [("add", 2), ("ping", 1)]
    entry = data["items"][0]
    assert entry["queue"] == "math" and entry["positional"] == ["x", "y"]
    assert entry["doc"] == "Add two numbers."
    assert entry["parameters"]["required"] == ["x"]
    assert client.get("/tasks/add").json() == entry


def test_get_unknown_task_is_404(client: httpx.Client) -> None:
    resp = client.get("/tasks/missing")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "task_not_found"


def test_malformed_entries_are_skipped(r: redis.Redis, client: httpx.Client) -> None:
    register(r, ping)
    r.hset(KEYS.tasks, "broken", b"{")
    assert [t["name"] for t in client.get("/tasks").json()["items"]] == ["ping"]
    assert client.get("/tasks/broken").status_code == 404
