"""POST /tasks/{name} and /tasks/{name}/batch: what is queued, and what is refused."""

from __future__ import annotations

import json

import httpx
import msgspec
import redis

from sdk.protocol import decode_envelope
from tests.gateway.conftest import KEYS, history, register


def add(x: int, y: int) -> int:
    return x + y


def noargs() -> None:
    return None


def _record(r: redis.Redis, run_id: str) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = r.hgetall(KEYS.run(run_id))
    return fields


def test_submit_answers_202_once_the_run_is_in_redis(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    resp = client.post("/tasks/add", json={"args": [2], "kwargs": {"y": 3}})
    assert resp.status_code == 202
    data = resp.json()
    assert data["task"] == "add" and data["state"] == "PENDING"
    assert resp.headers["location"] == data["links"]["self"] == f"/runs/{data['id']}"
    fields = _record(r, data["id"])
    assert fields[b"state"] == b"PENDING" and fields[b"queue"] == b"default"
    assert json.loads(fields[b"body"]) == {"args": [2], "kwargs": {"y": 3}}
    entries = r.xrange(KEYS.stream(0, "default", 5))
    assert [decode_envelope(f[b"env"]).id for _id, f in entries] == [data["id"]]
    run = client.get(data["links"]["self"]).json()
    assert run["id"] == data["id"] and run["state"] == "PENDING" and run["task"] == "add"


def test_options_queue_from_catalog_and_headers(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add, queue="io")
    resp = client.post(
        "/tasks/add",
        json={"args": [1, 2], "priority": 7},
        headers={"Idempotency-Key": "key-1", "X-Callback-Url": "http://127.0.0.1:9/cb"},
    )
    assert resp.status_code == 202
    run_id = resp.json()["id"]
    assert run_id != "key-1"  # idempotency keys name the request, not the run
    message = decode_envelope(_record(r, run_id)[b"env"])
    assert (message.queue, message.priority) == ("io", 7)
    assert message.callback_url == "http://127.0.0.1:9/cb"
    assert message.max_retries == 3  # the task's own default, as Task.apply_async applies it
    assert r.xlen(KEYS.stream(0, "io", 7)) == 1
    resp = client.post("/tasks/add", json={"args": [1, 2], "queue": "other"})
    assert decode_envelope(_record(r, resp.json()["id"])[b"env"]).queue == "other"


def test_countdown_is_scheduled(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    resp = client.post("/tasks/add", json={"args": [1, 2], "countdown": 60})
    assert resp.status_code == 202 and resp.json()["state"] == "SCHEDULED"
    assert r.zcard(KEYS.delayed(0, "default")) == 1


def test_empty_body_means_no_arguments(r: redis.Redis, client: httpx.Client) -> None:
    register(r, noargs)
    assert client.post("/tasks/noargs").status_code == 202
    resp = client.post("/tasks/noargs", content=b"", headers={"content-type": "application/json"})
    assert resp.status_code == 202


def test_msgpack_body(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    body = msgspec.msgpack.encode({"args": [1, 2], "priority": 9})
    resp = client.post("/tasks/add", content=body, headers={"content-type": "application/msgpack"})
    assert resp.status_code == 202
    fields = _record(r, resp.json()["id"])
    message = decode_envelope(fields[b"env"])
    assert message.content_type == "application/msgpack" and message.priority == 9
    assert msgspec.msgpack.decode(fields[b"body"]) == {"args": [1, 2], "kwargs": {}}


def test_a_task_registered_a_moment_ago_is_found(r: redis.Redis, client: httpx.Client) -> None:
    assert client.get("/tasks").json()["items"] == []  # the catalog is now cached
    register(r, add)
    assert client.post("/tasks/add", json={"args": [1, 2]}).status_code == 202


def test_unknown_task_is_404(client: httpx.Client) -> None:
    resp = client.post("/tasks/nope", json={})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "task_not_found"


def _error(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error: dict[str, object] = resp.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


def test_arguments_that_do_not_fit_are_422(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    cases = {
        "wrong type": ({"args": [1, "two"]}, "'y' must be integer"),
        "missing": ({"args": [1]}, "missing required argument(s): y"),
        "too many": ({"args": [1, 2, 3]}, "takes 2 positional argument(s) but 3"),
        "twice": ({"args": [1], "kwargs": {"x": 1, "y": 2}}, "multiple values for argument 'x'"),
        "unexpected": ({"args": [1, 2], "kwargs": {"z": 0}}, "unexpected argument(s): z"),
    }
    for why, (body, message) in cases.items():
        error = _error(client.post("/tasks/add", json=body), 422)
        assert error["code"] == "invalid_arguments", why
        assert message in str(error["message"]), why
    assert len(history(r)) == 0


def test_var_positional_takes_extra_args(r: redis.Redis, client: httpx.Client) -> None:
    def total(*numbers: int) -> int:
        return sum(numbers)

    register(r, total)
    assert client.post("/tasks/total", json={"args": [1, 2, 3, 4]}).status_code == 202


def test_malformed_requests_are_400(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    cases = [
        b"{not json",
        b'{"args": "1, 2"}',
        b'{"args": [1, 2], "priority": 12}',
        b'{"args": [1, 2], "priority": "high"}',
        b'{"args": [1, 2], "eta": "next tuesday"}',
        b'{"args": [1, 2], "queue": "a:b"}',
        b"[1, 2]",
    ]
    for body in cases:
        resp = client.post("/tasks/add", content=body, headers={"content-type": "application/json"})
        assert _error(resp, 400)["code"] == "invalid_request", body
    assert len(history(r)) == 0


def test_unsupported_content_type_is_415(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    resp = client.post("/tasks/add", content=b"x=1", headers={"content-type": "text/plain"})
    assert _error(resp, 415)["code"] == "unsupported_content_type"
    resp = client.post("/tasks/add", data={"x": "1"})  # a form
    assert resp.status_code == 415


def test_batch_queues_every_item_with_its_options(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    items = [{"args": [i, i]} for i in range(5)] + [{"args": [0, 0], "queue": "q2"}]
    resp = client.post("/tasks/add/batch", json={"items": items})
    assert resp.status_code == 202
    ids = resp.json()["ids"]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert r.xlen(KEYS.stream(0, "default", 5)) == 5 and r.xlen(KEYS.stream(0, "q2", 5)) == 1
    assert all(_record(r, i)[b"state"] == b"PENDING" for i in ids)
    resp = client.post(
        "/tasks/add/batch",
        json={"items": [{"args": [1, 2]}]},
        headers={"Idempotency-Key": "k", "X-Callback-Url": "http://127.0.0.1:9/cb"},
    )
    message = decode_envelope(_record(r, resp.json()["ids"][0])[b"env"])
    assert message.callback_url == "http://127.0.0.1:9/cb"


def test_batch_with_one_bad_item_queues_nothing(r: redis.Redis, client: httpx.Client) -> None:
    register(r, add)
    items = [{"args": [1, 2]}, {"args": [1, 2]}, {"args": [1, "x"]}]
    error = _error(client.post("/tasks/add/batch", json={"items": items}), 422)
    assert error["details"] == {"index": 2, "argument": "y", "rule": "type"}
    assert str(error["message"]).startswith("items[2]: ")
    items = [{"args": [1, 2]}, {"args": [1, 2], "priority": 99}]
    assert _error(client.post("/tasks/add/batch", json={"items": items}), 400)["details"] == {
        "index": 1
    }
    assert len(history(r)) == 0


def test_batch_limits(r: redis.Redis, client: httpx.Client) -> None:
    register(r, noargs)
    assert _error(client.post("/tasks/noargs/batch", json={"items": []}), 400)
    too_many = {"items": [{}] * 10_001}
    assert _error(client.post("/tasks/noargs/batch", json=too_many), 413)
    assert _error(client.post("/tasks/noargs/batch", json={"item": []}), 400)
    assert client.post("/tasks/nope/batch", json={"items": [{}]}).status_code == 404
    assert len(history(r)) == 0
