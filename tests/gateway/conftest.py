"""A real gateway (uvicorn in a thread, 127.0.0.1 only) over the session's Valkey."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from sdk import App
from sdk.protocol import decode_envelope, now_ms, plans
from sdk.protocol.drivers import Scripts
from sdk.protocol.keys import GROUP, Keys
from sdk.protocol.plans import Limits
from tests.conftest import Gateway

SIGNING_KEY = "test-signing-key"
WEBHOOK_SECRET = "whsec_Y2VsZXJpYWMtd2ViaG9vay10ZXN0LXNlY3JldC0zMmI="
LOCAL_HOOKS = "127.0.0.0/8"  # the SSRF guard lets tests call back receivers on 127.0.0.1
KEYS = Keys()


GATEWAY = {
    "signing_key": SIGNING_KEY,
    "webhook_secret": WEBHOOK_SECRET,
    "webhook_allow": LOCAL_HOOKS,
}


@pytest.fixture
def gw(redis_url: str, make_gateway: Callable[..., Gateway]) -> Gateway:
    """A gateway with a signing key, on the flushed test Valkey."""
    return make_gateway(redis_url=redis_url, **GATEWAY)


@pytest.fixture(params=[1, 4], ids=lambda n: f"partitions={n}")
def keys(request: pytest.FixtureRequest) -> Keys:
    """The key layout of ``pgw``: each test that takes it runs over 1 and 4 partitions."""
    return Keys(partitions=request.param)


@pytest.fixture
def pgw(redis_url: str, make_gateway: Callable[..., Gateway], keys: Keys) -> Gateway:
    """As ``gw``, over ``keys.partitions`` partitions."""
    return make_gateway(redis_url=redis_url, partitions=keys.partitions, **GATEWAY)


@pytest.fixture
def client(gw: Gateway) -> httpx.Client:
    return gw.client


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


# -- acting like an executor -----------------------------------------------------------------
def register(
    r: redis.Redis,
    fn: Callable[..., Any],
    name: str | None = None,
    queue: str = "default",
    **options: Any,
) -> str:
    """Write ``fn``'s catalog entry as an executor would; returns the task name."""
    task = App("t").task(name=name or fn.__name__, **options)(fn)
    entry = task.catalog_entry(queue)
    r.hset(KEYS.tasks, task.name, json.dumps(entry))
    return task.name


def add_worker(r: redis.Redis, worker_id: str, tasks: list[str], age_ms: int = 0) -> None:
    now = now_ms()
    r.hset(
        KEYS.workers,
        worker_id,
        json.dumps(
            {
                "id": worker_id,
                "host": "h",
                "pid": 1,
                "pool": "threads",
                "concurrency": 1,
                "queues": ["default"],
                "tasks": tasks,
                "active": 0,
                "processed": 0,
                "failed": 0,
                "started_at": now - age_ms,
                "last_heartbeat": now - age_ms,
            }
        ),
    )


def finish(
    r: redis.Redis,
    run_id: str,
    state: str = "SUCCESS",
    result: bytes = b"5",
    keys: Keys = KEYS,
) -> None:
    """Store the run's outcome and take it off its stream, with the finish script."""
    message = decode_envelope(r.hget(keys.run(run_id), "env"))  # type: ignore[arg-type]
    stream = keys.stream(keys.partition(run_id), message.queue, message.priority)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by an earlier call
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    entry_id = next(eid for eid, f in r.xrange(stream) if decode_envelope(f[b"env"]).id == run_id)
    fields = {"result": result, "result_ct": "application/json"}
    Scripts(r)(plans.finish(keys, Limits(), message, stream, entry_id.decode(), state, 12, fields))


def history(r: redis.Redis, keys: Keys = KEYS) -> dict[str, int]:
    """Every run id in the history zsets, with its creation time (ms)."""
    return {
        run_id.decode(): int(score)
        for part in keys.all_partitions
        for run_id, score in r.zrange(keys.history(part), 0, -1, withscores=True)
    }


def event_ids(r: redis.Redis, keys: Keys = KEYS) -> list[tuple[int, str]]:
    """Every entry id of the events streams, with its partition, oldest first."""
    found = [
        (part, entry_id.decode())
        for part in keys.all_partitions
        for entry_id, _fields in r.xrange(keys.events(part))
    ]
    return sorted(found, key=lambda pe: tuple(int(x) for x in pe[1].split("-")))
