"""One scheduler process (or task inside a gateway or worker): stand by, lead, fire.

Every ``renew_every`` seconds it takes or renews the lease. While it leads, APScheduler
runs and the store's version is polled every ``poll`` seconds; a change reloads every
schedule (so an HTTP or CLI edit takes effect within ``poll`` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.catalog import Catalog
from gateway.scheduler import static
from gateway.scheduler.driver import Driver
from gateway.scheduler.launcher import Launcher
from gateway.scheduler.lease import Lease
from gateway.scheduler.model import Schedule
from gateway.scheduler.store import Store
from sdk.broker import AsyncBroker
from sdk.clients import AsyncClient
from sdk.config import Settings
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    ttl: float = 5.0  # lease expiry, seconds
    renew_every: float = 1.0
    poll: float = 0.25  # version checks while leading


@dataclass(frozen=True)
class Static:
    """Schedules an App declares, to upsert at start."""

    app: str
    schedules: list[Schedule]


class SchedulerService:
    def __init__(
        self,
        client: AsyncClient,
        settings: Settings,
        static_schedules: Static | None = None,
        timing: Timing | None = None,
    ) -> None:
        keys = Keys.from_settings(settings)
        self.store = Store(client, keys)
        self.launcher = Launcher(
            AsyncBroker(client, keys, Limits.from_settings(settings)),
            self.store,
            Catalog(client, keys),
            settings.default_queue,
        )
        self.lease = Lease(client, keys.scheduler_leader, (timing or Timing()).ttl)
        self.timing = timing or Timing()
        self.static = static_schedules
        self.driver = Driver(self._fire)
        self._version = -1

    async def _fire(self, s: Schedule, fire_ms: int) -> None:
        if self.lease.held:  # deposed: the new leader resumes from the last recorded fire
            await self.launcher.fire(s, fire_ms)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; then release the lease so a standby takes over at once."""
        try:
            await self._upsert_static(stop)
            while not stop.is_set():
                await self._step(stop)
        finally:
            self._step_down()
            with suppress(RedisError):
                await self.lease.release()

    async def _upsert_static(self, stop: asyncio.Event) -> None:
        while self.static is not None and self.static.app and not stop.is_set():
            try:
                await static.upsert(self.store, self.static.app, self.static.schedules)
                return
            except RedisError as exc:
                log.warning("cannot write static schedules yet (%s); retrying", exc)
                await _wait(stop, self.timing.renew_every)

    async def _step(self, stop: asyncio.Event) -> None:
        """One lease period: take or renew, then (leading) follow changes until the next."""
        try:
            leading = await self.lease.acquire_or_renew()
        except RedisError as exc:
            leading = self.lease.held
            log.warning("scheduler lease check failed: %s", exc)
        if not leading:
            self._step_down()
            await _wait(stop, self.timing.renew_every)
            return
        if not self.driver.running:
            log.info("scheduler %s leads", self.lease.holder)
            self.driver.start()
        until = time.monotonic() + self.timing.renew_every
        while not stop.is_set() and time.monotonic() < until:
            try:
                await self._reload()
            except RedisError as exc:
                log.warning("cannot reload schedules: %s", exc)
            await _wait(stop, min(self.timing.poll, max(until - time.monotonic(), 0)))

    def _step_down(self) -> None:
        if self.driver.running:
            log.info("scheduler %s stops leading", self.lease.holder)
            self.driver.stop()
            self._version = -1

    async def _reload(self) -> None:
        version = await self.store.version()
        if version == self._version:
            return
        defs, states = await self.store.all(), await self.store.states()
        self.driver.sync(defs, states, now_ms())
        self._version = version


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@asynccontextmanager
async def running(
    client: AsyncClient, settings: Settings, static_schedules: Static | None = None
) -> AsyncIterator[SchedulerService]:
    """A scheduler as a background task of the current event loop (``gateway
    --with-scheduler``, ``worker -B``), stopped and its lease released on exit."""
    service = SchedulerService(client, settings, static_schedules)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await task
