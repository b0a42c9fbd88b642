"""Dramatiq seen from the harness: ``.send()`` and ``Message.get_result(block=True)``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadtests.peers import Probe, task_args
from loadtests.procs import python

_POOLS = {
    "2 processes x 8 threads": ["-p", "2", "-t", "8"],
    "gevent, 1 process x 1000 greenlets": ["-p", "1", "-t", "1000"],
}
_CONCURRENT = ("gevent, 1 process x 1000 greenlets",)  # for I/O-bound work (``sleep``)
_TIMEOUT_MS = 30_000


class DramatiqPeer:
    name = "dramatiq"
    pools: Sequence[str] = tuple(_POOLS)

    def __init__(self, redis_url: str) -> None:
        from loadtests.peers import dramatiq_app

        self.module = dramatiq_app
        self.actors: dict[str, Any] = {
            "add": dramatiq_app.add,
            "echo": dramatiq_app.echo,
            "sleep": dramatiq_app.sleep,
        }

    def pools_for(self, kind: str) -> Sequence[str]:
        return _CONCURRENT if kind == "sleep" else [p for p in self.pools if p not in _CONCURRENT]

    def worker_command(self, pool: str) -> list[str]:
        if pool in _CONCURRENT:  # dramatiq's own gevent launcher: it patches, then runs
            launcher = str(Path(sys.executable).with_name("dramatiq-gevent"))
            return [launcher, "loadtests.peers.dramatiq_app", *_POOLS[pool]]
        return python("-m", "dramatiq", "loadtests.peers.dramatiq_app", *_POOLS[pool])

    def sender(self, kind: str, pool: str) -> Callable[[], Any]:
        actor = self.actors[kind]
        args = task_args(kind)
        return lambda: actor.send(*args)

    def batch_sender(self, kind: str, size: int) -> Callable[[], list[Any]] | None:
        return None

    def probes(self, handles: Sequence[Any]) -> list[Probe]:
        backend = self.module.backend
        return [("EXISTS", backend.build_message_key(m)) for m in handles]

    def is_done(self, reply: Any) -> bool:
        return bool(reply)

    def result(self, handle: Any) -> Any:
        return handle.get_result(block=True, timeout=5_000)

    def round_trips(self, kind: str, gateway_url: str | None) -> dict[str, Callable[[], Any]]:
        actor = self.actors[kind]
        args = task_args(kind)
        return {
            "send().get_result()": lambda: actor.send(*args).get_result(
                block=True, timeout=_TIMEOUT_MS
            )
        }

    def close(self) -> None:
        self.module.broker.close()
