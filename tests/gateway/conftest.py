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
from sdk.broker import Broker
from sdk.keys import GROUP, Keys
from sdk.protocol import decode_envelope, now_ms
from tests.conftest import Gateway

SIGNING_KEY = "test-signing-key"
WEBHOOK_SECRET = "whsec_Y2VsZXJpYWMtd2ViaG9vay10ZXN0LXNlY3JldC0zMmI="
LOCAL_HOOKS = "127.0.0.0/8"  # the SSRF guard lets tests call back receivers on 127.0.0.1
KEYS = Keys()


@pytest.fixture
def gw(redis_url: str, make_gateway: Callable[..., Gateway]) -> Gateway:
    """A gateway with a signing key, on the flushed test Valkey."""
    return make_gateway(
        redis_url=redis_url,
        signing_key=SIGNING_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_allow=LOCAL_HOOKS,
    )


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


def finish(r: redis.Redis, run_id: str, state: str = "SUCCESS", result: bytes = b"5") -> None:
    """Store the run's outcome and take it off its stream, with the finish script."""
    broker = Broker(r, KEYS)
    message = decode_envelope(r.hget(KEYS.run(run_id), "env"))  # type: ignore[arg-type]
    stream = KEYS.stream(message.queue, message.priority)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by an earlier call
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    entry_id = next(eid for eid, f in r.xrange(stream) if decode_envelope(f[b"env"]).id == run_id)
    broker.scripts["finish"](
        keys=[KEYS.run(run_id), stream, KEYS.events, KEYS.dead(message.queue)],
        args=[
            run_id,
            entry_id,
            GROUP,
            state,
            now_ms(),
            12,
            86_400,
            100_000,
            message.task,
            message.queue,
            KEYS.done_channel(run_id),
            "result",
            result,
            "result_ct",
            "application/json",
        ],
    )
