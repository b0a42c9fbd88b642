"""Real scheduler processes (``celeriac scheduler``) for the scheduling tests."""

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

from sdk.protocol.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
SchedulerFactory = Callable[..., subprocess.Popen[bytes]]


def leader(r: redis.Redis) -> str | None:
    raw = r.get(Keys().scheduler_leader)
    return raw.decode() if isinstance(raw, bytes) else None


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def start_scheduler(redis_url: str, tmp_path: Path) -> Iterator[SchedulerFactory]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "sdk.cli", "scheduler", "--redis-url", redis_url]
        log = open(tmp_path / f"scheduler{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*cmd, "--log-level", "info", *extra],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
