"""The systems measured, each behind one small adapter (a Peer).

Every system runs the same tasks: ``add(x, y)`` returning ``x + y`` and ``echo(s)``
returning its ~1 KB string argument, results stored in Redis; and, asked for by name,
``sleep(x, y)``, which waits 50 ms (I/O-bound work) before returning ``x + y``, on each
system's configuration for high concurrency. The task modules
(``*_app.py``) are what the workers import; they read the server's URL from
``BENCH_REDIS_URL``, which the harness sets before importing them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from loadtests.procs import BenchError

KINDS = ("add", "echo")  # what a benchmark runs unless told
ALL_KINDS = (*KINDS, "sleep")
SLEEP_S = 0.05  # what each run of ``sleep`` waits
PAYLOAD = "x" * 1024  # echo's argument, and so its result


def task_args(kind: str) -> tuple[Any, ...]:
    return (PAYLOAD,) if kind == "echo" else (1, 2)


def expected(kind: str) -> Any:
    return PAYLOAD if kind == "echo" else 3


Probe = tuple[str, ...]  # one Redis command whose reply tells whether a run's result is stored


class Peer(Protocol):
    """One system under test, seen from the harness."""

    name: str
    pools: Sequence[str]  # labels of the worker configurations, the usual one first

    def pools_for(self, kind: str) -> Sequence[str]:
        """The configurations that run ``kind`` (``sleep``: the high-concurrency ones)."""
        ...

    def worker_command(self, pool: str) -> list[str]:
        """The command that starts a worker of ``pool`` (it must take SIGTERM to its group)."""
        ...

    def sender(self, kind: str, pool: str) -> Callable[[], Any]:
        """A function that queues one run of ``kind`` and returns its handle."""
        ...

    def batch_sender(self, kind: str, size: int) -> Callable[[], list[Any]] | None:
        """A function that queues ``size`` runs in one call, if the system has one."""
        ...

    def probes(self, handles: Sequence[Any]) -> list[Probe]:
        """For each handle, the command that reads whether its result is stored."""
        ...

    def is_done(self, reply: Any) -> bool: ...

    def result(self, handle: Any) -> Any:
        """A stored result, read back through the system's own API."""
        ...

    def round_trips(self, kind: str, gateway_url: str | None) -> dict[str, Callable[[], Any]]:
        """Labelled functions that submit one run, wait for its result and return it."""
        ...

    def close(self) -> None: ...


_PEERS = {
    "celeriac": "loadtests.peers.celeriac_peer:CeleriacPeer",
    "celery": "loadtests.peers.celery_peer:CeleryPeer",
    "dramatiq": "loadtests.peers.dramatiq_peer:DramatiqPeer",
}
NAMES = tuple(_PEERS)


def create(name: str, redis_url: str) -> Peer:
    """The peer ``name`` (imported only now: each needs BENCH_REDIS_URL set first)."""
    module, _, attr = _PEERS[name].partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise BenchError(
            f"{name} is not installed ({exc.name} missing): .venv/bin/pip install -e '.[bench]'"
        ) from exc
    peer: Peer = factory(redis_url)
    return peer
