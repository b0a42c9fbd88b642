"""Processes of a benchmark: each in its own group, its output in a log, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psutil

from sdk.embedded import die_with_parent

ROOT = Path(__file__).resolve().parents[1]


class BenchError(Exception):
    """A benchmark step failed or timed out; the message says which and why."""


def python(*args: str) -> list[str]:
    """A command running this interpreter (the venv's, with every peer installed)."""
    return [sys.executable, *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``check`` every 20 ms; raise BenchError after ``timeout`` or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet: connection refused, missing key, ...
            pass
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the process exited ({proc.returncode}){tail(log)}")
        time.sleep(0.02)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}{tail(log)}")


def tail(log: Path | None, chars: int = 1500) -> str:
    if log is None or not log.exists():
        return ""
    return "\n--- " + str(log) + " ---\n" + log.read_text(errors="replace")[-chars:]


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of a process and all its descendants; PSS shares pages fairly."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


class Procs:
    """Starts processes in new sessions (one process group each) and stops them all."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.running: list[subprocess.Popen[bytes]] = []
        self.log_of: dict[int, Path] = {}
        self._count = 0

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        self._count += 1
        log = self.logs / f"{self._count:03d}-{name.replace(' ', '_')}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: we stop the whole tree
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        self.running.append(proc)
        self.log_of[proc.pid] = log
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> Path:
        return self.log_of[proc.pid]

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL to the group after ``grace`` seconds."""
        if proc in self.running:
            self.running.remove(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        _signal_group(proc.pid, signal.SIGKILL)  # children a clean exit left behind, too
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, grace=5.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
