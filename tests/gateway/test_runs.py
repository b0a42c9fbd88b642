"""GET /runs/{id}, and ?wait=N long-polls woken by the events stream."""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from sdk.embedded import EmbeddedServer
from sdk.protocol.keys import Keys
from tests.gateway.conftest import Gateway, finish, register

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster


def add(x: int, y: int) -> int:
    return x + y


def _submit(client: httpx.Client, r: redis.Redis) -> str:
    register(r, add)
    resp = client.post("/tasks/add", json={"args": [2, 3]})
    assert resp.status_code == 202
    run_id: str = resp.json()["id"]
    return run_id


def test_unknown_run_is_404(client: httpx.Client) -> None:
    for url in ("/runs/nope", "/runs/nope?wait=1"):
        resp = client.get(url)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "run_not_found"


@pytest.mark.parametrize("wait", ["-1", "61", "abc", "nan", "inf", ""])
def test_bad_wait_is_400(wait: str, r: redis.Redis, client: httpx.Client) -> None:
    run_id = _submit(client, r)
    resp = client.get(f"/runs/{run_id}", params={"wait": wait})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_request"


def test_long_poll_returns_when_the_run_finishes(
    r: redis.Redis, client: httpx.Client, layout: Keys
) -> None:
    run_id = _submit(client, r)
    timer = threading.Timer(0.5, finish, args=(r, run_id), kwargs={"keys": layout})
    timer.start()
    started = time.monotonic()
    resp = client.get(f"/runs/{run_id}", params={"wait": 20})
    elapsed = time.monotonic() - started
    timer.join()
    assert resp.status_code == 200
    run = resp.json()
    assert run["state"] == "SUCCESS" and run["result"] == 5
    assert 0.4 < elapsed < 5  # woke at the finish, long before the 20 s wait


def test_long_poll_times_out_with_the_pending_run(r: redis.Redis, client: httpx.Client) -> None:
    run_id = _submit(client, r)
    started = time.monotonic()
    resp = client.get(f"/runs/{run_id}", params={"wait": "1.5"})
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and resp.json()["state"] == "PENDING"
    assert 1.4 < elapsed < 5


def test_long_poll_of_a_finished_run_returns_at_once(
    r: redis.Redis, client: httpx.Client, layout: Keys
) -> None:
    run_id = _submit(client, r)
    finish(r, run_id, state="FAILURE", result=b"null", keys=layout)
    started = time.monotonic()
    resp = client.get(f"/runs/{run_id}", params={"wait": 30})
    assert resp.json()["state"] == "FAILURE"
    assert time.monotonic() - started < 5


def test_many_waiters_share_one_tail(r: redis.Redis, pgw: Gateway, keys: Keys) -> None:
    """One tail over every partition's events stream wakes them all."""
    gw = pgw
    register(r, add)
    ids = gw.client.post(
        "/tasks/add/batch", json={"items": [{"args": [i, 1]} for i in range(50)]}
    ).json()["ids"]

    async def wait_all() -> list[str]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            polls = [client.get(f"/runs/{i}", params={"wait": 20}) for i in ids]
            finisher = asyncio.get_running_loop().run_in_executor(
                None, lambda: [finish(r, i, keys=keys) for i in ids]
            )
            answers = await asyncio.wait_for(asyncio.gather(*polls), 25)
            await finisher
        return [a.json()["state"] for a in answers]

    started = time.monotonic()
    assert asyncio.run(wait_all()) == ["SUCCESS"] * 50
    assert time.monotonic() - started < 15


def test_long_poll_survives_a_redis_restart(
    tmp_path: pathlib.Path, make_gateway: Callable[..., Gateway]
) -> None:
    server = EmbeddedServer(tmp_path / "redis", persistent=True).start()
    try:
        gw = make_gateway(redis_url=server.url)
        client = redis.Redis.from_url(server.url)
        run_id = _submit(gw.client, client)
        answer: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: answer.append(gw.client.get(f"/runs/{run_id}", params={"wait": 30}))
        )
        poll.start()
        time.sleep(0.3)
        server.stop()
        assert gw.client.get("/readyz").status_code == 503
        server.start()  # same port, same data
        finish(client, run_id)
        poll.join(25)
        assert answer and answer[0].json()["state"] == "SUCCESS"
        assert gw.client.get("/readyz").status_code == 200
        client.close()
    finally:
        server.stop()
