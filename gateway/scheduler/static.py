"""Static schedules (``beat_schedule``, ``add_periodic_task``) as stored definitions, and
the rule for upserting them at start without clobbering runtime edits:

- a static schedule is stored with ``source: "static"`` and its App's name;
- at start, each one is written unless the stored one has ``source: "api"`` (it was
  created, changed, paused or resumed at runtime since) or belongs to another App;
- an unchanged one keeps its times, so restarts do not shift interval schedules;
- a static schedule of this App that the code no longer declares is deleted.
"""

from __future__ import annotations

import logging

import msgspec

from gateway.scheduler.model import Cron, Interval, Schedule, validate
from gateway.scheduler.store import Store
from sdk.errors import CeleriacError, ConfigurationError
from sdk.schedules import PeriodicTask, crontab

log = logging.getLogger(__name__)
_TIMES = ("created_at", "updated_at", "anchor")


def to_schedule(p: PeriodicTask, app: str, timezone: str, now: int) -> Schedule:
    """A definition for one declared periodic task; ConfigurationError if it is invalid."""
    every = p.every
    trigger = (
        Interval(seconds=every)
        if every is not None
        else Cron(
            expr=p.schedule.expr if isinstance(p.schedule, crontab) else "", timezone=timezone
        )
    )
    opts = p.options
    expires = opts.get("expires")
    s = Schedule(
        id=p.name,
        task=p.task,
        trigger=trigger,
        args=list(p.args),
        kwargs=dict(p.kwargs),
        queue=opts.get("queue"),
        priority=opts.get("priority"),
        expires=float(expires) if isinstance(expires, int | float) else None,
        source="static",
        app=app,
        created_at=now,
        updated_at=now,
        anchor=now,
    )
    try:
        validate(s)
    except CeleriacError as exc:
        raise ConfigurationError(f"periodic task {p.name!r}: {exc.message}") from None
    return s


def _same(old: Schedule, new: Schedule) -> bool:
    times = {t: getattr(old, t) for t in _TIMES}
    return msgspec.structs.replace(new, **times) == old


async def upsert(store: Store, app: str, schedules: list[Schedule]) -> None:
    """Apply the rule above for ``app``'s declared ``schedules``."""
    existing = await store.all()
    for s in schedules:
        old = existing.get(s.id)
        if old is not None and (old.source != "static" or old.app != app or _same(old, s)):
            if old.source != "static":
                log.info("static schedule %s kept as changed at runtime", s.id)
            continue
        if await store.upsert_static(s):
            log.info("static schedule %s written", s.id)
    declared = {s.id for s in schedules}
    for sid, old in existing.items():
        if old.source == "static" and old.app == app and sid not in declared:
            log.info("static schedule %s no longer declared: deleted", sid)
            await store.delete(sid)
