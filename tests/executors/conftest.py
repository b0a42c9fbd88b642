"""Real worker processes, started through the CLI against the session server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from sdk import App
from sdk.clients import sync_client
from sdk.protocol.keys import Keys
from tests.conftest import POOLS

ROOT = Path(__file__).resolve().parents[2]
WorkerFactory = Callable[..., subprocess.Popen[bytes]]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Return once ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise TimeoutError(f"condition not met within {timeout}s")


def wait_registered(client: redis.Redis, worker_id: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.hexists(Keys().workers, worker_id):
            return
        time.sleep(0.05)
    raise TimeoutError(f"worker {worker_id} did not register within {timeout}s")


@pytest.fixture(params=POOLS)
def pool(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_worker(redis_url: str, r: redis.Redis, tmp_path: Path) -> Iterator[WorkerFactory]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        pool: str = "threads",
        *extra: str,
        name: str | None = None,
        env: dict[str, str] | None = None,
        server: str | None = None,  # another server than the session's
    ) -> subprocess.Popen[bytes]:
        name = name or f"w{len(procs)}-{os.getpid()}"
        url = server or redis_url
        cmd = [
            sys.executable,
            "-m",
            "sdk.cli",
            "worker",
            "-A",
            "tests.executors.tasks",
            "--pool",
            pool,
            "--redis-url",
            url,
            "--name",
            name,
            "--log-level",
            "warning",
            *extra,
        ]
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        procs.append(proc)
        if server is None:
            wait_registered(r, name)
        else:
            other = sync_client(server)
            try:
                wait_registered(other, name)  # type: ignore[arg-type]
            finally:
                other.close()
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def app(redis_url: str) -> Iterator[App]:
    app = App("producer", redis_url=redis_url)
    yield app
    app.close()
