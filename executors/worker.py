"""The worker process: registers tasks, runs a pool of slots, beats, promotes due runs.

Built at one entry point (the CLI) from explicit parts; it never asks what kind of pool
it runs. SIGTERM or Ctrl-C is a warm shutdown; a second one is cold.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import redis
import redis.asyncio as aredis

from executors import claims, heartbeat
from executors.async_consumer import AsyncConsumer
from executors.async_lane import AsyncLane
from executors.backoff import Backoff
from executors.board import SlotBoard
from executors.consumer import Consumer, SlotConfig, all_streams, ensure_groups
from executors.control import ControlListener
from executors.middleware import Counting, HardTimeLimit, RateLimit, Retries, SoftTimeLimit
from executors.pools import Pool
from executors.pools.base import LoopSlots, StopFlag, TaskSource, TaskSourcePool
from executors.runner import Runner
from sdk.app import App
from sdk.broker import Broker
from sdk.clients import UNREACHABLE, async_client, sync_client
from sdk.errors import Terminated, TimeLimitExceeded
from sdk.exceptions_wire import describe
from sdk.hygiene import eviction_warning
from sdk.middleware import Middleware
from sdk.protocol import F_KILLED, new_id, now_ms, plans
from sdk.protocol.drivers import AsyncScripts
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits
from sdk.serializers import Codec
from sdk.signing import Signer

log = logging.getLogger("celeriac.worker")
TICK_S = 0.1  # main loop: promote due runs, watch time limits, supervise slots
TASKS_EVERY_S = 1.0  # a pool's own tasks (HTTP tasks) are re-read this often


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


class Worker:
    def __init__(self, *, app: App, pool: Pool, options: WorkerOptions) -> None:
        if not app.conf.redis_url:
            raise ValueError("the worker needs a Redis URL")
        self.app = app
        self.pool = pool
        self.options = options
        self.keys = Keys.from_settings(app.conf)
        self.limits = Limits.from_settings(app.conf)
        self.codec = Codec(Signer(app.conf.signing_key) if app.conf.signing_key else None)
        self.id = options.name or f"{socket.gethostname()}-{new_id()[-12:]}"
        self.info = heartbeat.WorkerInfo(
            id=self.id,
            pool=pool.name,
            concurrency=options.concurrency,
            queues=list(options.queues),
            tasks=sorted(app.tasks),
        )
        self.counters = heartbeat.Counters(options.concurrency)
        self.board = SlotBoard(options.concurrency)
        self.streams = all_streams(self.keys, options.queues)
        self._signals = 0
        self._wake = threading.Event()
        # A claim is at most 1.5 refresh periods idle, well under the dead-worker time.
        self._refresh_s = min(claims.REFRESH_EVERY_S, options.dead_after_s / 3)
        self.more_tasks: TaskSource | None = None  # the pool's own tasks, if it has any

    def _client(self) -> redis.Redis:
        """A client of one server, or a RedisCluster for a redis+cluster:// URL (typed as the
        former for the methods below and executors/heartbeat.py: a Cluster serves every
        command they send, each of one key or one slot)."""
        backoff = Backoff()
        while True:  # a Cluster's client reads the slot map now: wait for a node to answer
            try:
                client = sync_client(self.app.conf.redis_url or "", health_check_interval=30)
                return cast(redis.Redis, client)
            except UNREACHABLE as exc:
                log.warning("waiting for Redis (%s)", exc)
                backoff.sleep()

    # -- a slot (runs inside the pool: a thread, a child process) --------------------------------
    def run_slot(self, index: int, stop: StopFlag) -> None:
        client = self._client()  # never shared: each slot, each process, its own connection
        broker = Broker(client, self.keys, self.limits)
        runner = self._runner(index, broker, RateLimit(broker), self.pool.run_async)
        try:
            Consumer(broker=broker, runner=runner, config=self._slot_config(index)).run(stop)
        finally:
            client.close()

    # -- every slot as a coroutine on one loop (the asyncio pool) ----------------------------------
    async def run_slots(self, concurrency: int, stop: asyncio.Event, slots: LoopSlots) -> None:
        client = async_client(self.app.conf.redis_url or "", health_check_interval=30)
        sync = self._client()  # for what tasks call synchronously (update_state)
        broker = Broker(sync, self.keys, self.limits)
        scripts = AsyncScripts(client)
        lane = AsyncLane(client) if isinstance(client, aredis.Redis) else scripts  # one server
        rate_limit = RateLimit(broker, scripts)
        consumer = AsyncConsumer(
            client=client,
            scripts=lane,
            keys=self.keys,
            limits=self.limits,
            runners=lambda index: self._runner(index, broker, rate_limit, self.pool.run_async),
            config=self._slot_config(0),
            slots=slots,
        )
        try:
            await consumer.run(concurrency, stop)
        finally:
            if isinstance(lane, AsyncLane):
                await lane.close()
            await client.aclose()
            sync.close()

    def _runner(
        self,
        index: int,
        broker: Broker,
        rate_limit: RateLimit,
        run_async: Callable[[Awaitable[Any]], Any],
    ) -> Runner:
        """Slot ``index``'s runner, through the worker's middleware, then the app's."""
        middleware: list[Middleware] = [
            rate_limit,
            Counting(self.counters, index),
            HardTimeLimit(self.board, index),
            Retries(),
            SoftTimeLimit(self.pool.interrupter),
            *self.app.middleware,
        ]
        return Runner(
            app=self.app,
            codec=self.codec,
            worker_id=self.id,
            middleware=middleware,
            state_writer=broker.update_state,
            run_async=run_async,
            more_tasks=None if self.more_tasks is None else self.more_tasks.get,
        )

    def _slot_config(self, index: int) -> SlotConfig:
        return SlotConfig(
            name=f"{self.id}.{index}",
            queues=self.options.queues,
            index=index,
            prefetch=self.options.prefetch,
            max_runs=self.options.max_tasks_per_child,
            max_memory_mb=self.options.max_memory_per_child_mb,
            max_deliveries=self.options.max_deliveries,
            reclaim_idle_ms=int(self.options.dead_after_s * 1000),
            reclaim_every_s=min(5.0, self.options.dead_after_s),
        )

    # -- the main process -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until signalled; returns the exit code (0 after a warm shutdown)."""
        client = self._client()
        broker = Broker(client, self.keys, self.limits)
        if isinstance(self.pool, TaskSourcePool):
            concurrency = self.options.concurrency
            self.more_tasks = self.pool.task_source(self.app, client, self.keys, concurrency)
        self._prepare(client)
        self._install_signals()
        self.pool.start(self, self.options.concurrency)
        control = ControlListener(self._client(), self.keys.control, self._terminate)
        control.start()
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
            control.stop()
            clean = self._shutdown()
            self._safely(heartbeat.unregister, client, self.keys, self.id)
            client.close()
        return 0 if clean else 1

    def _prepare(self, client: redis.Redis) -> None:
        backoff = Backoff()
        while True:
            try:
                self._check_eviction(client)
                heartbeat.register_tasks(client, self.keys, self.app)
                if self.more_tasks is not None:
                    self._refresh_tasks()
                ensure_groups(client, self.streams)
                return
            except UNREACHABLE as exc:
                log.warning("waiting for Redis (%s)", exc)
                backoff.sleep()

    @staticmethod
    def _check_eviction(client: redis.Redis) -> None:
        try:
            warning = eviction_warning(client.config_get("maxmemory*"))
        except redis.ResponseError:  # CONFIG is disabled on some managed services
            return
        if warning:
            log.warning("!" * 20 + " %s " + "!" * 20, warning)

    def _main_loop(self, client: redis.Redis, broker: Broker) -> None:
        every = _Every()
        while self._signals == 0:
            if every(heartbeat.HEARTBEAT_S, "beat"):
                self._safely(heartbeat.beat, client, self.keys, self.info, self.counters)
            if self.more_tasks is not None and every(TASKS_EVERY_S, "tasks"):
                self._safely(self._refresh_tasks)
            if every(self._refresh_s, "claims"):
                self._safely(
                    claims.keep_fresh, client, self.streams, self.id, int(self._refresh_s * 500)
                )
            self._safely(self._promote_due, broker)
            self._safely(self._enforce_time_limits, client)
            self.pool.supervise()
            self._wake.wait(TICK_S)

    def _refresh_tasks(self) -> None:
        """Re-read the pool's own tasks; the heartbeat lists them with the app's, so
        ``GET /tasks/{name}`` counts this worker for them."""
        assert self.more_tasks is not None
        self.more_tasks.refresh()
        self.info.tasks = sorted({*self.app.tasks, *self.more_tasks.names()})

    def _promote_due(self, broker: Broker) -> None:
        """Move due countdown/ETA/retry runs of our queues to their streams: the due ids
        of every delayed set in one round trip, then a promote call where there are any."""
        now = now_ms()
        sets = [(part, q) for part in self.keys.all_partitions for q in self.options.queues]
        pipe = broker.redis.pipeline(transaction=False)
        for part, queue in sets:
            pipe.zrangebyscore(self.keys.delayed(part, queue), "-inf", now, start=0, num=500)
        for (part, queue), due in zip(sets, pipe.execute(), strict=True):
            if due:
                ids = [i.decode() for i in due]
                broker.scripts(plans.promote(self.keys, self.limits, part, queue, ids, now))

    def _enforce_time_limits(self, client: redis.Redis) -> None:
        """Stop runs past their hard time limit; record why first, so no one re-runs them."""
        for index, run_id in self.board.overdue():
            log.error("run %s exceeded its hard time limit; stopping it", run_id)
            error = describe(TimeLimitExceeded("hard time limit exceeded: the run was stopped"))
            client.hset(self.keys.run(run_id), F_KILLED, self.codec.encode(error, "json")[0])
            self.board.idle(index)
            self.pool.terminate(index, TimeLimitExceeded)

    def _terminate(self, run_id: str) -> None:
        """A revoke with terminate: stop the slot running ``run_id``, if it is ours."""
        index = self.board.slot_of(run_id)
        if index is not None:
            log.warning("terminating run %s (revoked)", run_id)
            self.pool.terminate(index, Terminated)

    def _shutdown(self) -> bool:
        log.info("warm shutdown: finishing running runs (up to %.0fs)", self.options.grace_s)
        deadline = time.monotonic() + self.options.grace_s
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
    def _safely(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except UNREACHABLE as exc:
            log.warning("Redis unreachable: %s", exc)


class _Every:
    """``every(period, name)`` is true at most once per period for each name."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    def __call__(self, period: float, name: str) -> bool:
        now = time.monotonic()
        if now < self._next.get(name, 0.0):
            return False
        self._next[name] = now + period
        return True
