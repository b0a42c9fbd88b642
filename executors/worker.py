"""The worker process: registers tasks, runs a pool of slots, beats, promotes due runs.

Built at one entry point (the CLI) from explicit parts; it never asks what kind of pool
it runs. SIGTERM or Ctrl-C is a warm shutdown; a second one is cold.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import redis

from executors import claims, heartbeat
from executors.consumer import Consumer, SlotConfig, StopFlag, ensure_groups
from executors.pools import Pool
from executors.runner import Outcome, Runner
from sdk import states
from sdk.app import App
from sdk.broker import Broker, Limits
from sdk.keys import Keys
from sdk.protocol import Message, new_id, now_ms
from sdk.serializers import Codec
from sdk.signing import Signer

log = logging.getLogger("celeriac.worker")
PROMOTE_EVERY_S = 0.1


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 2
    prefetch: int = 4
    max_tasks_per_child: int = 0
    max_memory_per_child_mb: int = 0
    grace_s: float = 30.0
    name: str | None = None
    max_deliveries: int = 5
    dead_after_s: float = heartbeat.DEAD_AFTER_S


class _CountingRunner(Runner):
    def __init__(
        self, app: App, codec: Codec, worker_id: str, counters: heartbeat.Counters
    ) -> None:
        super().__init__(app, codec, worker_id)
        self.counters = counters

    def run(self, message: Message, body: bytes, attempts: int) -> Outcome:
        with self.counters.active.get_lock():
            self.counters.active.value += 1
        try:
            outcome = super().run(message, body, attempts)
        finally:
            with self.counters.active.get_lock():
                self.counters.active.value -= 1
        counter = self.counters.failed if outcome.state == states.FAILURE else None
        with self.counters.processed.get_lock():
            self.counters.processed.value += 1
        if counter is not None:
            with counter.get_lock():
                counter.value += 1
        return outcome


class Worker:
    def __init__(self, app: App, pool: Pool, options: WorkerOptions) -> None:
        if not app.conf.redis_url:
            raise ValueError("the worker needs a Redis URL")
        self.app = app
        self.pool = pool
        self.options = options
        self.keys = Keys(app.conf.prefix)
        self.limits = Limits(history=app.conf.history_size, result_ttl=app.conf.result_expires)
        self.codec = Codec(Signer(app.conf.signing_key) if app.conf.signing_key else None)
        self.id = options.name or f"{socket.gethostname()}-{new_id()[-12:]}"
        self.info = heartbeat.WorkerInfo(
            id=self.id,
            pool=pool.name,
            concurrency=options.concurrency,
            queues=list(options.queues),
            tasks=sorted(app.tasks),
        )
        self.counters = heartbeat.Counters(*(multiprocessing.Value("q", 0) for _ in range(3)))
        self.streams = [s for q in options.queues for s in self.keys.streams(q)]
        self._signals = 0
        # A claim is at most 1.5 refresh periods idle, well under the dead-worker time.
        self._refresh_s = min(claims.REFRESH_EVERY_S, options.dead_after_s / 3)
        self._wake = threading.Event()

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.app.conf.redis_url or "", health_check_interval=30)

    # -- a slot (runs inside the pool: a thread, a child process) ----------------------------------
    def run_slot(self, index: int, stop: StopFlag) -> None:
        client = self._client()  # never shared: each slot, each process, its own connection
        runner = _CountingRunner(self.app, self.codec, self.id, self.counters)
        config = SlotConfig(
            name=f"{self.id}.{index}",
            streams=self.streams,
            prefetch=self.options.prefetch,
            max_runs=self.options.max_tasks_per_child,
            max_memory_mb=self.options.max_memory_per_child_mb,
            max_deliveries=self.options.max_deliveries,
            reclaim_idle_ms=int(self.options.dead_after_s * 1000),
            reclaim_every_s=min(5.0, self.options.dead_after_s),
        )
        try:
            Consumer(Broker(client, self.keys, self.limits), runner, config).run(stop)
        finally:
            client.close()

    # -- the main process ------------------------------------------------------------------------
    def run(self) -> int:
        """Run until signalled; returns the exit code (0 after a warm shutdown)."""
        client = self._client()
        broker = Broker(client, self.keys, self.limits)
        self._prepare(client)
        self._install_signals()
        self.pool.start(self.run_slot, self.options.concurrency)
        log.info(
            "worker %s: pool %s, concurrency %d, queues %s, %d tasks",
            self.id,
            self.pool.name,
            self.options.concurrency,
            ",".join(self.options.queues),
            len(self.app.tasks),
        )
        try:
            self._main_loop(client, broker)
        finally:
            clean = self._shutdown()
            self._safely(heartbeat.unregister, client, self.keys, self.id)
            client.close()
        return 0 if clean else 1

    def _prepare(self, client: redis.Redis) -> None:
        backoff = 0.1
        while True:
            try:
                heartbeat.register_tasks(client, self.keys, self.app)
                ensure_groups(client, self.streams)
                return
            except redis.ConnectionError as exc:
                log.warning("waiting for Redis (%s)", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _main_loop(self, client: redis.Redis, broker: Broker) -> None:
        next_beat = next_refresh = 0.0
        while self._signals == 0:
            now = time.monotonic()
            if now >= next_beat:
                self._safely(heartbeat.beat, client, self.keys, self.info, self.counters)
                next_beat = now + heartbeat.HEARTBEAT_S
            if now >= next_refresh:
                self._safely(claims.keep_fresh, client, self.streams, self.id,
                             int(self._refresh_s * 500))
                next_refresh = now + self._refresh_s
            self._safely(self._promote_due, broker)
            self.pool.supervise()
            self._wake.wait(PROMOTE_EVERY_S)

    def _promote_due(self, broker: Broker) -> None:
        """Move due countdown/ETA runs of our queues to their streams."""
        for queue in self.options.queues:
            broker.scripts["promote"](
                [self.keys.delayed(queue), self.keys.events],
                [now_ms(), 500, self.keys.prefix, queue, self.limits.events],
            )

    def _shutdown(self) -> bool:
        log.info("warm shutdown: finishing running runs (up to %.0fs)", self.options.grace_s)
        deadline = time.monotonic() + self.options.grace_s
        self._wake.clear()
        while time.monotonic() < deadline and self._signals < 2:
            if self.pool.stop(min(0.2, max(0.0, deadline - time.monotonic()))):
                return True
        cold = self._signals > 1
        log.warning(
            "%s: killing slots; their runs stay pending and run again",
            "cold shutdown" if cold else "grace period over",
        )
        self.pool.kill()
        return not cold

    def _install_signals(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._signals += 1
            self._wake.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    @staticmethod
    def _safely(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("Redis unreachable: %s", exc)
