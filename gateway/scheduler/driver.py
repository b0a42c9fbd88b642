"""APScheduler in the leader: one in-memory job per enabled schedule, kept in step with
the store, each fire handed to the Launcher with its nominal fire time."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError

from gateway.scheduler.model import Schedule, State, encode, first_fire, resume_point, trigger_of
from sdk.errors import InvalidSchedule

log = logging.getLogger(__name__)

Fire = Callable[[str, datetime], Awaitable[None]]


class FireExecutor(BaseExecutor):  # type: ignore[misc]
    """An executor that passes each due time to ``fire``: APScheduler does not hand a job
    function its scheduled time, and the run id is derived from it."""

    def __init__(self, fire: Fire) -> None:
        super().__init__()
        self._fire = fire
        self._tasks: set[asyncio.Task[None]] = set()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job, run_times))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job, run_times: list[datetime]) -> None:
        events = []
        try:
            for when in run_times:
                late = datetime.now(UTC) - when
                grace = job.misfire_grace_time
                if grace is not None and late > timedelta(seconds=grace):
                    events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, "default", when))
                    log.warning("schedule %s: fire time %s missed by %s", job.id, when, late)
                    continue
                try:
                    await self._fire(job.id, when)
                except RedisError as exc:  # the next leader resumes from the last recorded fire
                    log.error("schedule %s: fire at %s failed: %s", job.id, when, exc)
                except Exception:
                    log.exception("schedule %s: fire at %s failed", job.id, when)
        finally:
            self._run_job_success(job.id, events)

    def shutdown(self, wait: bool = True) -> None:
        for task in self._tasks:
            task.cancel()


def _never(*_: Any) -> None:
    """The job function APScheduler requires; FireExecutor never calls it."""


class Driver:
    """Runs APScheduler while this process leads; ``sync`` applies the stored schedules."""

    def __init__(self, fire: Callable[[Schedule, int], Awaitable[Any]]) -> None:
        self._fire = fire
        self.defs: dict[str, Schedule] = {}
        self._seen: dict[str, bytes] = {}
        self._aps: AsyncIOScheduler | None = None

    @property
    def running(self) -> bool:
        return self._aps is not None

    def start(self) -> None:
        self._aps = AsyncIOScheduler(
            executors={"default": FireExecutor(self._on_due)}, timezone=UTC
        )
        self._aps.start()

    def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
        self._aps = None
        self.defs.clear()
        self._seen.clear()

    async def _on_due(self, job_id: str, when: datetime) -> None:
        s = self.defs.get(job_id)
        if s is not None:
            await self._fire(s, round(when.timestamp() * 1000))

    def sync(self, schedules: dict[str, Schedule], states: dict[str, State], now: int) -> None:
        """Add, replace or remove jobs so that they match ``schedules``."""
        for gone in set(self._seen) - set(schedules):
            self._remove(gone)
        for sid, s in schedules.items():
            raw = encode(s)
            if self._seen.get(sid) == raw:
                continue
            self._remove(sid)
            self._seen[sid] = raw
            if s.enabled:
                self._add(s, states.get(sid) or State(), now)

    def _remove(self, sid: str) -> None:
        self._seen.pop(sid, None)
        self.defs.pop(sid, None)
        if self._aps is not None and self._aps.get_job(sid) is not None:
            self._aps.remove_job(sid)

    def _add(self, s: Schedule, state: State, now: int) -> None:
        assert self._aps is not None
        try:
            trigger = trigger_of(s)
        except InvalidSchedule as exc:
            log.error("schedule %s cannot run: %s", s.id, exc.message)
            return
        first = first_fire(trigger, resume_point(s, state, now))
        if first is None:
            return  # a one-off that already ran, or past its end
        grace = s.misfire_grace_time
        self.defs[s.id] = s
        self._aps.add_job(
            _never,
            trigger=trigger,
            id=s.id,
            name=s.id,
            next_run_time=datetime.fromtimestamp(first / 1000, UTC),
            misfire_grace_time=None if grace is None else max(1, math.ceil(grace)),
            coalesce=s.coalesce,
            max_instances=1_000_000,  # an instance is one enqueue; see Schedule.max_instances
        )
