"""/dead-letters: runs that exhausted their deliveries, listed across queues and
partitions, and put back on their queue."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import finish, register

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster


def add(x: int, y: int) -> int:
    return x + y


def _dead(client: httpx.Client, r: redis.Redis, keys: Keys, queue: str) -> str:
    resp = client.post("/tasks/add", json={"args": [1, 2], "queue": queue})
    assert resp.status_code == 202, resp.text
    run_id = str(resp.json()["id"])
    finish(r, run_id, state="DEAD", keys=keys)
    return run_id


def _walk(client: httpx.Client, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        page = client.get(
            "/dead-letters", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        ids += [item["id"] for item in page.json()["items"]]
        if (cursor := page.json()["next"]) is None:
            return ids
    raise AssertionError("pagination did not end")


def test_dead_letters_are_listed_newest_first_and_requeued(
    r: redis.Redis, pgw: Gateway, keys: Keys
) -> None:
    register(r, add)
    client = pgw.client
    dead = [_dead(client, r, keys, queue) for queue in ["default", "io"] * 6]
    alive = client.post("/tasks/add", json={"args": [1, 2]}).json()["id"]
    newest_first = dead[::-1]
    assert _walk(client) == newest_first
    assert _walk(client, limit=5) == newest_first  # pages, across queues and partitions
    assert _walk(client, queue="io", limit=2) == newest_first[::2]
    assert client.get("/dead-letters", params={"limit": 0}).status_code == 400
    assert client.post(f"/dead-letters/{alive}/requeue").status_code == 409
    assert client.post("/dead-letters/nope/requeue").status_code == 404
    resp = client.post(f"/dead-letters/{dead[3]}/requeue")
    assert resp.status_code == 202 and resp.json()["state"] == "PENDING"
    assert dead[3] not in _walk(client)
    assert client.get(f"/runs/{dead[3]}").json()["state"] == "PENDING"


def test_letters_of_one_entry_id_in_several_streams_are_all_listed(
    r: redis.Redis, pgw: Gateway, keys: Keys
) -> None:
    register(r, add)
    client = pgw.client
    queues = ["a", "b", "c"]
    ids = [_dead(client, r, keys, queue) for queue in queues]
    for run_id, queue in zip(ids, queues, strict=True):  # the same entry id in every stream
        stream = keys.dead(keys.partition(run_id), queue)
        r.delete(stream)
        r.xadd(stream, {"id": run_id}, id="1-1")
    assert _walk(client, limit=1) == sorted(ids, reverse=True)  # ties: by run id
    after_all = client.get("/dead-letters", params={"cursor": "1-1"}).json()
    assert after_all == {"items": [], "next": None}  # an entry id alone: after all of them
    for bad in ("x", "1-", "-1", "1-1-1"):
        assert client.get("/dead-letters", params={"cursor": bad}).status_code == 400, bad
