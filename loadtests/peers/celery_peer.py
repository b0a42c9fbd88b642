"""Celery 5 seen from the harness: ``.delay()`` and ``AsyncResult.get()``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loadtests.peers import Probe, task_args
from loadtests.procs import python

_POOLS = {
    "prefork -c 2": ["-P", "prefork", "-c", "2"],
    "threads -c 8": ["-P", "threads", "-c", "8"],
    "gevent -c 1000": ["-P", "gevent", "-c", "1000"],
}
_CONCURRENT = ("gevent -c 1000",)  # for I/O-bound work (``sleep``)
_TIMEOUT = 30.0


class CeleryPeer:
    name = "celery"
    pools: Sequence[str] = tuple(_POOLS)

    def __init__(self, redis_url: str) -> None:
        from loadtests.peers import celery_app

        self.app = celery_app.app
        self.tasks = {"add": celery_app.add, "echo": celery_app.echo, "sleep": celery_app.sleep}

    def pools_for(self, kind: str) -> Sequence[str]:
        return _CONCURRENT if kind == "sleep" else [p for p in self.pools if p not in _CONCURRENT]

    def worker_command(self, pool: str) -> list[str]:
        app = ["-A", "loadtests.peers.celery_app", "worker", "-l", "WARNING"]
        return python("-m", "celery", *app, "--without-mingle", "--without-gossip", *_POOLS[pool])

    def sender(self, kind: str, pool: str) -> Callable[[], Any]:
        task = self.tasks[kind]
        args = task_args(kind)
        # Keep only the id, as a fire-and-forget producer does: the AsyncResult is dropped at
        # once, which ends the result subscription Celery opened for it.
        return lambda: task.delay(*args).id

    def batch_sender(self, kind: str, size: int) -> Callable[[], list[Any]] | None:
        return None

    def probes(self, handles: Sequence[Any]) -> list[Probe]:
        backend = self.app.backend
        return [("EXISTS", backend.get_key_for_task(h).decode()) for h in handles]

    def is_done(self, reply: Any) -> bool:
        return bool(reply)

    def result(self, handle: Any) -> Any:
        return self.app.AsyncResult(handle).get(timeout=5)

    def round_trips(self, kind: str, gateway_url: str | None) -> dict[str, Callable[[], Any]]:
        task = self.tasks[kind]
        args = task_args(kind)
        return {"delay().get()": lambda: task.delay(*args).get(timeout=_TIMEOUT)}

    def close(self) -> None:
        self.app.close()
