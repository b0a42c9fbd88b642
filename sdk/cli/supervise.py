"""A tiny process supervisor for ``celeriac dev``: start children, notice one dying,
stop them all in order (SIGTERM, a bounded wait, then SIGKILL).

Children get their own session, so a Ctrl-C in the terminal reaches only the
supervisor, which then asks each child for a warm shutdown exactly once. On Linux they
also receive SIGTERM if the supervisor itself dies, so no orphan keeps running.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from sdk.embedded import die_with_parent


@dataclass
class Child:
    """One supervised process: a name for messages and the command that starts it."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts ``children`` and stops them; knows nothing about what they run."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(
                child.argv,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )

    def exited(self) -> Child | None:
        """The first child that has exited, if any."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop(self, grace: float, force: StopSignals | None = None) -> None:
        """SIGTERM every running child, wait up to ``grace`` seconds, then SIGKILL the rest.

        A further Ctrl-C while waiting (seen through ``force``) cuts the wait short.
        """
        for child in self.children:
            if child.running and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(c.running for c in self.children) and time.monotonic() < deadline:
            if force is not None and force.count > 1:
                break
            time.sleep(0.05)
        for child in self.children:
            if child.running and child.process is not None:
                child.process.kill()
            if child.process is not None:
                child.process.wait()


@dataclass
class StopSignals:
    """Counts SIGINT/SIGTERM received while installed: one asks to stop, two to hurry."""

    count: int = 0
    signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.signum = signum

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True once a stop was asked for."""
        if not self.count:
            time.sleep(timeout)
        return self.count > 0


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Catch SIGINT and SIGTERM for the duration, restoring the old handlers after."""
    signals = StopSignals()
    previous = {s: signal.signal(s, signals.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def describe_exit(code: int) -> str:
    """``exit code 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
