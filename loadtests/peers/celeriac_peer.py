"""Celeriac seen from the harness: the SDK's direct Redis path, the gateway, raw HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx

from loadtests.peers import Probe, expected, task_args
from loadtests.procs import python
from sdk import App
from sdk.calls import Call, SendOptions
from sdk.protocol.keys import Keys
from sdk.states import TERMINAL

_POOLS = {
    "prefork -c 2": ["--pool", "prefork", "-c", "2"],
    "threads -c 8": ["--pool", "threads", "-c", "8"],
    "gevent -c 50": ["--pool", "gevent", "-c", "50"],
    "asyncio -c 50": ["--pool", "asyncio", "-c", "50"],
    "asyncio -c 1000": ["--pool", "asyncio", "-c", "1000"],
    "gevent -c 1000": ["--pool", "gevent", "-c", "1000"],
}
_CONCURRENT = ("asyncio -c 1000", "gevent -c 1000")  # for I/O-bound work (``sleep``)
_TERMINAL = {s.encode() for s in TERMINAL}
_TIMEOUT = 30.0


def task_name(kind: str, pool: str) -> str:
    """The asyncio pool runs the ``async def`` twins of the tasks."""
    if pool.startswith("asyncio"):
        return f"bench.{kind}_async"
    return f"bench.{kind}"


def worker_command(redis_url: str, pool: str, *extra: str) -> list[str]:
    """A worker of the benchmark's tasks on ``redis_url``, in ``pool`` (a key of the pools)."""
    app = ["-A", "loadtests.peers.celeriac_app", "--redis-url", redis_url]
    options = ["--log-level", "warning", *_POOLS[pool], *extra]
    return python("-m", "sdk.cli", "worker", *app, *options)


class CeleriacPeer:
    name = "celeriac"
    pools: Sequence[str] = tuple(_POOLS)

    def __init__(self, redis_url: str) -> None:
        from loadtests.peers import celeriac_app

        self.redis_url = redis_url
        self.app = celeriac_app.app  # App(redis_url=BENCH_REDIS_URL): the direct path
        self.keys = Keys.from_settings(self.app.conf)  # its prefix and partitions
        self._closers: list[Callable[[], None]] = [self.app.close]

    def pools_for(self, kind: str) -> Sequence[str]:
        return _CONCURRENT if kind == "sleep" else [p for p in self.pools if p not in _CONCURRENT]

    def worker_command(self, pool: str) -> list[str]:
        return worker_command(self.redis_url, pool)

    def sender(self, kind: str, pool: str) -> Callable[[], Any]:
        task = self.app.tasks[task_name(kind, pool)]
        args = task_args(kind)
        return lambda: task.delay(*args).id

    def batch_sender(self, kind: str, size: int) -> Callable[[], list[Any]] | None:
        calls = [Call(f"bench.{kind}", task_args(kind), {}, SendOptions()) for _ in range(size)]
        return lambda: [r.id for r in self.app.send_calls(calls)]

    def probes(self, handles: Sequence[Any]) -> list[Probe]:
        return [("HGET", self.keys.run(h), "state") for h in handles]

    def is_done(self, reply: Any) -> bool:
        return reply in _TERMINAL

    def result(self, handle: Any) -> Any:
        return self.app.AsyncResult(handle).get(timeout=5)

    def round_trips(self, kind: str, gateway_url: str | None) -> dict[str, Callable[[], Any]]:
        args = task_args(kind)
        task = self.app.tasks[f"bench.{kind}"]
        trips: dict[str, Callable[[], Any]] = {
            "SDK direct": lambda: task.delay(*args).get(timeout=_TIMEOUT)
        }
        if gateway_url:
            via = App("bench-http", gateway_url=gateway_url)
            http = httpx.Client(base_url=gateway_url, timeout=_TIMEOUT)
            self._closers += [via.close, http.close]
            trips["SDK via gateway"] = lambda: via.send_task(f"bench.{kind}", args).get(_TIMEOUT)
            trips["raw HTTP"] = lambda: _http_round_trip(http, f"bench.{kind}", args, kind)
        return trips

    def close(self) -> None:
        for close in self._closers:
            close()


def _http_round_trip(client: httpx.Client, task: str, args: tuple[Any, ...], kind: str) -> Any:
    """POST /tasks/{name}, then GET /runs/{id}?wait=5, on one keep-alive connection."""
    sent = client.post(f"/tasks/{task}", json={"args": list(args)})
    sent.raise_for_status()
    run = client.get(f"/runs/{sent.json()['id']}", params={"wait": 5}).json()
    if run.get("result") != expected(kind):
        raise RuntimeError(f"unexpected run {run.get('id')}: {run.get('state')}")
    return run["result"]
