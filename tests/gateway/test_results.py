"""GET /runs (filters, pagination) and idempotent submission, through a real gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis

from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import finish, history, register

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster


def add(x: int, y: int) -> int:
    return x + y


def mul(x: int, y: int) -> int:
    return x * y


def _submit(client: httpx.Client, task: str, **body: Any) -> str:
    resp = client.post(f"/tasks/{task}", json={"args": [1, 2], **body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _walk(client: httpx.Client, **params: Any) -> list[str]:
    """Every id of /runs, page by page."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/runs", params=query).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


def test_runs_newest_first_with_filters(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    client = pgw.client
    register(r, add)
    register(r, mul)
    a1 = _submit(client, "add")
    m1 = _submit(client, "mul", queue="io")
    a2 = _submit(client, "add", queue="io")
    m2 = _submit(client, "mul")
    finish(r, a1, keys=keys)
    finish(r, m1, state="FAILURE", keys=keys)
    page = client.get("/runs").json()
    assert [i["id"] for i in page["items"]] == [m2, a2, m1, a1] and page["next"] is None
    assert page["items"][0] == client.get(f"/runs/{m2}").json()  # the same objects
    assert _walk(client, task="add") == [a2, a1]
    assert _walk(client, queue="io") == [a2, m1]
    assert _walk(client, state="SUCCESS") == [a1]
    assert _walk(client, state="success,failure") == [m1, a1]
    assert _walk(client, task="mul", state="PENDING") == [m2]
    assert _walk(client, task="nope") == []
    r.delete(keys.run(a2))  # an expired record is skipped
    assert _walk(client, queue="io") == [m1]


def test_runs_pagination_is_stable(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    client = pgw.client
    register(r, add)
    resp = client.post("/tasks/add/batch", json={"items": [{"args": [i, i]} for i in range(25)]})
    ids = resp.json()["ids"]
    created = history(r, keys)
    newest_first = sorted(ids, key=lambda i: (created[i], i), reverse=True)
    first = client.get("/runs", params={"limit": 10}).json()
    assert [i["id"] for i in first["items"]] == newest_first[:10] and first["next"]
    _submit(client, "add")  # a new run does not shift the following pages
    rest = _walk(client, limit=10, cursor=first["next"])
    assert rest == newest_first[10:]
    assert _walk(client, limit=7)[1:] == newest_first  # the new run comes first


def test_runs_bad_parameters(client: httpx.Client) -> None:
    for params in ({"limit": "0"}, {"limit": "x"}, {"cursor": "%%%"}, {"colour": "red"}):
        resp = client.get("/runs", params=params)
        assert resp.status_code == 400, params


def test_runs_history_is_bounded(r: redis.Redis, redis_url: str, make_gateway: Any) -> None:
    register(r, add)
    gw: Gateway = make_gateway(redis_url=redis_url, history_size=5, partitions=1)  # per partition
    ids = gw.client.post(
        "/tasks/add/batch", json={"items": [{"args": [i, i]} for i in range(8)]}
    ).json()["ids"]
    listed = _walk(gw.client)
    assert len(listed) == 5 and set(listed) <= set(ids)


# -- idempotency -------------------------------------------------------------------------------
async def _burst(url: str, n: int, body: dict[str, Any], key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post("/tasks/add", json=body, headers={"Idempotency-Key": key})
                for _ in range(n)
            )
        )


def test_hundred_concurrent_repeats_make_one_run(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    register(r, add)
    responses = asyncio.run(_burst(pgw.url, 100, {"args": [1, 2]}, "order-42"))
    statuses = sorted(resp.status_code for resp in responses)
    assert statuses == [200] * 99 + [202]
    bodies = {resp.content for resp in responses}
    assert len(bodies) == 1  # every repeat answers the first answer's body
    run_id = responses[0].json()["id"]
    assert {resp.headers["location"] for resp in responses} == {f"/runs/{run_id}"}
    part = keys.key_partition("order-42")
    assert keys.partition(run_id) == part  # the run is in its key's partition
    assert list(history(r, keys)) == [run_id] and r.xlen(keys.stream(part, "default", 5)) == 1
    assert r.ttl(keys.idempotency("order-42")) > 86_000  # as long as results


def test_same_key_other_body_is_a_conflict(
    r: redis.Redis, client: httpx.Client, layout: Keys
) -> None:
    register(r, add)
    first = client.post("/tasks/add", json={"args": [1, 2], "idempotency_key": "k1"})
    assert first.status_code == 202
    again = client.post("/tasks/add", json={"args": [1, 2], "idempotency_key": "k1"})
    assert again.status_code == 200 and again.json() == first.json()
    other = client.post("/tasks/add", json={"args": [1, 3], "idempotency_key": "k1"})
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "idempotency_conflict" and error["details"]["id"] == first.json()["id"]
    header = client.post("/tasks/add", json={"args": [1, 2]}, headers={"Idempotency-Key": "k1"})
    assert header.status_code == 409  # another body (the key is not in it): another request
    for bad in ("", "x" * 300):
        resp = client.post("/tasks/add", json={"args": [1, 2]}, headers={"Idempotency-Key": bad})
        assert resp.status_code == 400
    assert len(history(r, layout)) == 1
