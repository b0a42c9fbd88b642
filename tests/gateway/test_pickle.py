"""application/x-cloudpickle: signed bodies are queued as they came and never unpickled."""

from __future__ import annotations

import hashlib
import hmac
import pathlib
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from sdk.protocol import decode_envelope
from tests.gateway.conftest import KEYS, SIGNING_KEY, Gateway, history, register

PICKLE = {"content-type": "application/x-cloudpickle"}


def echo(value: Any) -> Any:
    return value


class _Tripwire:
    """Unpickling this touches a file: the test proves the gateway never does."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.path,))


def _sign(body: bytes, key: str = SIGNING_KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def tripwire(tmp_path: pathlib.Path) -> tuple[bytes, pathlib.Path]:
    marker = tmp_path / "unpickled"
    body = pickle.dumps({"args": [_Tripwire(marker)], "kwargs": {}})
    return body, marker


def test_signed_pickle_is_queued_unopened(
    r: redis.Redis, client: httpx.Client, tripwire: tuple[bytes, pathlib.Path]
) -> None:
    register(r, echo)
    body, marker = tripwire
    resp = client.post(
        "/tasks/echo",
        content=body,
        params={"queue": "py", "priority": "8"},
        headers={**PICKLE, "X-Celeriac-Signature": _sign(body)},
    )
    assert resp.status_code == 202, resp.text
    fields = r.hgetall(KEYS.run(resp.json()["id"]))
    assert fields[b"body"] == body
    message = decode_envelope(fields[b"env"])
    assert message.content_type == "application/x-cloudpickle"
    assert message.signature == _sign(body)
    assert (message.queue, message.priority) == ("py", 8)
    assert not marker.exists()


def test_unsigned_or_badly_signed_pickle_is_refused(
    r: redis.Redis, client: httpx.Client, tripwire: tuple[bytes, pathlib.Path]
) -> None:
    register(r, echo)
    body, marker = tripwire
    for headers in (
        PICKLE,
        {**PICKLE, "X-Celeriac-Signature": _sign(body, "wrong")},
        {**PICKLE, "X-Celeriac-Signature": "zz"},
    ):
        resp = client.post("/tasks/echo", content=body, headers=headers)
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "bad_signature"
    assert len(history(r)) == 0 and not marker.exists()


def test_pickle_needs_a_signing_key_on_the_gateway(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway]
) -> None:
    register(r, echo)
    gw = make_gateway(redis_url=redis_url)  # no signing key
    body = pickle.dumps({"args": [1], "kwargs": {}})
    resp = gw.client.post(
        "/tasks/echo", content=body, headers={**PICKLE, "X-Celeriac-Signature": _sign(body)}
    )
    assert resp.status_code == 403
    assert len(history(r)) == 0


def test_pickle_query_options_are_checked(r: redis.Redis, client: httpx.Client) -> None:
    register(r, echo)
    body = pickle.dumps({"args": [1], "kwargs": {}})
    headers = {**PICKLE, "X-Celeriac-Signature": _sign(body)}
    for params in ({"priority": "high"}, {"priority": "10"}, {"bogus": "1"}, {"countdown": "nan"}):
        assert (
            client.post("/tasks/echo", content=body, params=params, headers=headers).status_code
            == 400
        ), params
    resp = client.post("/tasks/echo", content=body, params={"countdown": "30"}, headers=headers)
    assert resp.status_code == 202 and resp.json()["state"] == "SCHEDULED"
    assert client.post("/tasks/nope", content=body, headers=headers).status_code == 404
