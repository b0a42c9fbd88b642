"""End-to-end helpers: ``celeriac dev`` as a real process tree on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from sdk.embedded import free_port


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without any CELERIAC_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def celeriac(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``celeriac ARGS`` to completion, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
    )


class Dev:
    """One ``celeriac dev`` process tree, its output in a log file."""

    def __init__(self, data_dir: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in close()
        argv = [
            sys.executable,
            "-m",
            "sdk.cli",
            "dev",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *extra,
        ]
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
        self.http = httpx.Client(base_url=self.url, timeout=70)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_ready(self, task: str = "examples.add", timeout: float = 60) -> None:
        """Until the banner is out, /readyz answers 200 and a worker has registered ``task``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"celeriac dev exited with {self.process.returncode}:\n{self.output()}")
            if "Celeriac dev is running." in self.output() and self._serves(task):
                return
            time.sleep(0.2)
        pytest.fail(f"celeriac dev not ready after {timeout}s:\n{self.output()}")

    def _serves(self, task: str) -> bool:
        try:
            ready = self.http.get("/readyz").status_code == 200
            return ready and self.http.get(f"/tasks/{task}").status_code == 200
        except httpx.HTTPError:
            return False

    def submit(self, task: str, **body: Any) -> str:
        response = self.http.post(f"/tasks/{task}", json=body)
        assert response.status_code == 202, response.text
        run_id: str = response.json()["id"]
        return run_id

    def wait_run(self, run_id: str, wait: float = 10) -> dict[str, Any]:
        response = self.http.get(f"/runs/{run_id}", params={"wait": wait})
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as from a terminal; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill_all(self) -> None:
        """SIGKILL the whole tree at once, embedded server included, as a power cut would."""
        if self.process.poll() is not None:
            return
        tree = [*psutil.Process(self.process.pid).children(recursive=True)]
        for proc in tree:  # children first: they must not see their parent go and react
            proc.kill()
        self.process.kill()
        self.process.wait()
        psutil.wait_procs(tree, timeout=10)

    def close(self) -> None:
        self.kill_all()
        self.http.close()
        self._log.close()


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[Any]:
    """``start_dev(data_dir, *flags)`` starts a ``celeriac dev``; all are killed at the end."""
    started: list[Dev] = []

    def start(data_dir: Path, *extra: str) -> Dev:
        dev = Dev(data_dir, tmp_path / f"dev-{len(started)}.log", *extra)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """One ``celeriac dev`` for a whole test module."""
    tmp = tmp_path_factory.mktemp("dev")
    running = Dev(tmp / "data", tmp / "dev.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.close()


@pytest.fixture
def cli() -> Any:
    """``cli(*args, timeout=60, **env)`` runs ``celeriac`` and returns the completed process."""
    return celeriac
