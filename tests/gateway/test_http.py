"""The error model for routing errors and limits, health, Redis outages and OpenAPI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import redis
from starlette.routing import Route

from gateway.errors import error_response
from sdk import errors
from tests.gateway.conftest import Gateway, history, register


def echo(value: str) -> str:
    return value


def test_unknown_route_and_method_answer_json(client: httpx.Client) -> None:
    resp = client.get("/nowhere")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = client.patch("/tasks/echo")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"
    allowed = set(resp.headers["allow"].replace(" ", "").split(","))
    assert allowed == {"GET", "HEAD", "POST", "PUT", "DELETE"}


def test_oversized_bodies_are_413(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway]
) -> None:
    register(r, echo)
    gw = make_gateway(redis_url=redis_url, max_body=1000)
    small = {"args": ["x" * 500]}
    assert gw.client.post("/tasks/echo", json=small).status_code == 202
    big = b'{"args": ["' + b"x" * 5000 + b'"]}'
    resp = gw.client.post("/tasks/echo", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413  # refused on Content-Length, before reading
    assert resp.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        yield big[:600]
        yield big[600:]

    resp = gw.client.post(
        "/tasks/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["details"] == {"limit": 1000}
    assert len(history(r)) == 1


def test_health(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "warnings": []}


def test_redis_down_is_503_with_retry_after(
    closed_port_url: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(redis_url=closed_port_url)  # starts although nothing listens there
    assert gw.client.get("/healthz").status_code == 200
    started = time.monotonic()
    for method, url in (
        ("GET", "/readyz"),
        ("POST", "/tasks/echo"),
        ("GET", "/tasks"),
        ("GET", "/runs/abc"),
        ("GET", "/runs/abc?wait=1"),
    ):
        resp = gw.client.request(method, url, json={"args": ["x"]} if method == "POST" else None)
        assert resp.status_code == 503, (url, resp.text)
        assert resp.headers["retry-after"] == "1"
        assert resp.json()["error"]["code"] == "broker_unavailable"
    assert time.monotonic() - started < 10


def test_openapi_lists_every_path(gw: Gateway) -> None:
    doc = gw.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    served = {route.path for route in gw.app.routes if isinstance(route, Route)}
    assert served == set(doc["paths"])
    for path in served:
        route_methods = {
            m.lower()
            for route in gw.app.routes
            if isinstance(route, Route) and route.path == path
            for m in (route.methods or ())
            if m != "HEAD"
        }
        assert route_methods <= set(doc["paths"][path]), path


def test_one_mapping_from_exceptions_to_statuses() -> None:
    expected = {
        errors.InvalidRequest: 400,
        errors.ProtocolError: 400,
        errors.SerializationError: 400,
        errors.SignatureError: 403,
        errors.TaskNotFound: 404,
        errors.RunNotFound: 404,
        errors.Conflict: 409,
        errors.PayloadTooLarge: 413,
        errors.UnsupportedContentType: 415,
        errors.InvalidArguments: 422,
        errors.BrokerUnavailable: 503,
        redis.ConnectionError: 503,
        redis.TimeoutError: 503,
    }
    for cls, status in expected.items():
        assert error_response(cls("boom")).status_code == status, cls
    assert error_response(redis.ConnectionError("x")).headers["retry-after"] == "1"
    bug = error_response(RuntimeError("secret detail"))
    assert bug.status_code == 500 and b"secret detail" not in bytes(bug.body)
    assert bug.headers["content-type"] == "application/json"


def test_readyz_warns_when_redis_may_evict_runs(client: httpx.Client, r: redis.Redis) -> None:
    assert client.get("/readyz").json()["warnings"] == []
    r.config_set("maxmemory", "1gb")
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        body = client.get("/readyz").json()
        assert body["status"] == "ok" and "allkeys-lru" in body["warnings"][0]
    finally:
        r.config_set("maxmemory", "0")
        r.config_set("maxmemory-policy", "noeviction")
