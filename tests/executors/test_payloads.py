"""Content types end to end: msgpack, signed cloudpickle, and pickles that must be refused."""

from __future__ import annotations

import datetime as dt
import os
import pickle
from pathlib import Path

import cloudpickle
import pytest
import redis

from sdk import App
from sdk.broker import Broker
from sdk.calls import Call, SendOptions, build_submission
from sdk.errors import SignatureError
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Submission
from sdk.serializers import Codec
from sdk.signing import Signer
from tests.executors.conftest import WorkerFactory

KEY = "test-signing-key"


class _Marker:
    """Unpickling this creates a file: proof that a payload was (or was not) unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.mark.cluster
def test_msgpack_round_trip(start_worker: WorkerFactory, redis_url: str) -> None:
    start_worker("threads")
    app = App("p", redis_url=redis_url, serializer="msgpack")
    assert app.send_task("t.echo", [{"a": [1, 2.5, None, b"raw"]}]).get(timeout=10) == {
        "a": [1, 2.5, None, b"raw"]
    }
    app.close()


@pytest.mark.cluster
def test_signed_pickle_carries_python_objects(start_worker: WorkerFactory, redis_url: str) -> None:
    start_worker("prefork", env={"CELERIAC_SIGNING_KEY": KEY})
    app = App("p", redis_url=redis_url, serializer="pickle", signing_key=KEY)
    when = dt.datetime(2026, 11, 21, 15, 4, 5)
    assert app.send_task("t.echo", [{when, 3j}]).get(timeout=10) == {when, 3j}
    app.close()


@pytest.mark.parametrize("signature", [None, "00" * 32])
def test_unsigned_or_badly_signed_pickle_is_never_unpickled(
    start_worker: WorkerFactory,
    redis_url: str,
    r: redis.Redis,
    tmp_path: Path,
    signature: str | None,
) -> None:
    start_worker("threads", env={"CELERIAC_SIGNING_KEY": KEY})
    mark = tmp_path / "unpickled"
    codec = Codec(Signer(KEY))
    sub = build_submission(
        Call("t.echo", [], {}, SendOptions()),
        codec,
        default_queue="default",
        content_type="application/json",
    )
    sub.message.content_type = "application/x-cloudpickle"
    sub.message.signature = signature
    body = cloudpickle.dumps({"args": [_Marker(str(mark))], "kwargs": {}})
    Broker(r, Keys()).submit([Submission(sub.message, body)])
    app = App("p", redis_url=redis_url)
    with pytest.raises(SignatureError):
        app.AsyncResult(sub.message.id).get(timeout=10)
    assert not mark.exists()
    app.close()


def test_worker_without_a_key_refuses_even_signed_pickle(
    start_worker: WorkerFactory, redis_url: str, tmp_path: Path
) -> None:
    start_worker("threads", env={"CELERIAC_SIGNING_KEY": ""})
    app = App("p", redis_url=redis_url, serializer="pickle", signing_key=KEY)
    with pytest.raises(SignatureError, match="CELERIAC_SIGNING_KEY"):
        app.send_task("t.echo", [1]).get(timeout=10)
    app.close()


def test_producer_without_a_key_cannot_send_pickle(redis_url: str) -> None:
    app = App("p", redis_url=redis_url, serializer="pickle")
    with pytest.raises(SignatureError):
        app.send_task("t.echo", [1])
    app.close()


def test_a_pickled_result_is_verified_before_the_caller_unpickles_it(
    start_worker: WorkerFactory, redis_url: str, r: redis.Redis
) -> None:
    start_worker("threads", env={"CELERIAC_SIGNING_KEY": KEY})
    app = App("p", redis_url=redis_url, serializer="pickle", signing_key=KEY)
    result = app.send_task("t.echo", [[1, 2]])
    assert result.get(timeout=10) == [1, 2]
    r.hset(Keys().run(result.id), "result", pickle.dumps(os.getcwd()))  # tampered
    with pytest.raises(SignatureError):
        result.get(timeout=1)
    app.close()
