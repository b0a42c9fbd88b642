"""A schedule's definition, its APScheduler trigger, and the run id of each fire time.

Fire times must come out identical in every scheduler process, so that the run id derived
from (schedule id, fire time) dedupes a fire across a failover. Hence: interval schedules
carry a stored anchor, time zones are stored resolved, and jitter is never applied to the
trigger (it delays the run through its ``eta`` instead, by an amount derived from the id).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sdk.errors import InvalidSchedule, ProtocolError
from sdk.protocol import parse_time

RECENT = 10  # run ids of recent scheduled fires kept per schedule (max_instances <= this)
DEFAULT_GRACE = 30.0  # seconds a missed fire time may still run (misfire_grace_time)
_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0, "weeks": 604800.0}
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class Interval(msgspec.Struct, tag="interval", tag_field="type", forbid_unknown_fields=True):
    seconds: float | None = None
    minutes: float | None = None
    hours: float | None = None
    days: float | None = None
    weeks: float | None = None
    start_at: str | None = None
    end_at: str | None = None

    @property
    def total(self) -> float:
        return sum((getattr(self, u) or 0.0) * f for u, f in _UNITS.items())


class Cron(msgspec.Struct, tag="cron", tag_field="type", forbid_unknown_fields=True):
    expr: str
    timezone: str | None = None
    start_at: str | None = None
    end_at: str | None = None


class Date(msgspec.Struct, tag="date", tag_field="type", forbid_unknown_fields=True):
    run_at: str


Trigger = Interval | Cron | Date


class Schedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The stored definition (JSON in ``Keys.schedules``). Times inside are ms since epoch."""

    id: str
    task: str
    trigger: Trigger
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    expires: float | None = None  # seconds after the fire time
    enabled: bool = True
    jitter: float | None = None  # seconds; the run's eta is delayed by up to this much
    misfire_grace_time: float | None = DEFAULT_GRACE  # None: a missed fire time always runs
    coalesce: bool = False  # missed fire times run once (the latest) instead of each
    max_instances: int | None = None  # skip a fire while this many earlier runs are unfinished
    source: Literal["api", "static"] = "api"
    app: str | None = None  # the App a static schedule came from
    created_at: int = 0
    updated_at: int = 0
    anchor: int = 0  # interval schedules count from here (creation or last trigger change)


class State(msgspec.Struct, kw_only=True):
    """What firing changes (JSON in ``Keys.schedule_state``), written by ``fired.lua``."""

    last_fire: int | None = None  # nominal time of the latest scheduled fire (ms)
    last_run_at: int | None = None  # when the latest run (scheduled or manual) was queued
    last_run_id: str | None = None
    recent: list[str] = msgspec.field(default_factory=list)  # newest first, at most RECENT


encode = msgspec.json.Encoder(order="deterministic").encode
_decode_schedule = msgspec.json.Decoder(Schedule).decode
_decode_state = msgspec.json.Decoder(State).decode


def decode_schedule(raw: bytes) -> Schedule:
    return _decode_schedule(raw)


def decode_state(raw: bytes | None) -> State:
    return State() if not raw else _decode_state(raw)


# -- validation and triggers -------------------------------------------------------------------
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"unknown time zone {name!r} (use an IANA name such as 'Asia/Shanghai')",
            details={"timezone": name},
        ) from None


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(parse_time(value) / 1000, UTC)
    except ProtocolError:
        raise InvalidSchedule(f"{what} is not an ISO 8601 time: {value!r}") from None


def _weekday(item: str) -> str:
    """One day-of-week item from cron numbering (0/7 Sunday) to names APScheduler 3 reads
    right (it counts 0 as Monday): ``1-5`` becomes ``mon,tue,wed,thu,fri``."""
    body, _, step = item.partition("/")
    if not (body == "*" or body.replace("-", "").isdigit()) or (step and not step.isdigit()):
        return item  # names ("mon-fri") and anything else: APScheduler reads or refuses them
    lo, _, hi = body.partition("-")
    first, last = (0, 6) if body == "*" else (int(lo), int(hi or (6 if step else lo)))
    if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and int(step or 1) > 0):
        raise InvalidSchedule(f"invalid day of week {item!r} (0-7, 0 and 7 are Sunday)")
    days = {_WEEKDAYS[d % 7] for d in range(first, last + 1, int(step or 1))}
    return ",".join(d for d in _WEEKDAYS if d in days)


def cron_trigger(
    expr: str, tz: ZoneInfo, start: datetime | None, end: datetime | None
) -> CronTrigger:
    fields = expr.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            f"cron expression {expr!r} must have 5 fields (minute hour day month weekday)",
            details={"expr": expr},
        )
    minute, hour, day, month, dow = fields
    weekday = ",".join(_weekday(i) for i in dow.split(","))
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekday,
            timezone=tz,
            start_date=start,
            end_date=end,
        )
    except ValueError as exc:
        raise InvalidSchedule(f"invalid cron expression {expr!r}: {exc}") from None


def trigger_of(s: Schedule) -> BaseTrigger:
    """The APScheduler trigger of ``s`` (no jitter: fire times must be deterministic)."""
    t = s.trigger
    if isinstance(t, Interval):
        total = t.total
        if not (total > 0 and math.isfinite(total)):
            raise InvalidSchedule(f"an interval must be more than 0 seconds, not {total:g}")
        start = _time(t.start_at, "start_at") or datetime.fromtimestamp(
            s.anchor / 1000 + total, UTC
        )
        end = _time(t.end_at, "end_at")
        return IntervalTrigger(seconds=total, start_date=start, end_date=end, timezone=UTC)
    if isinstance(t, Cron):
        tz = zone(t.timezone or "UTC")
        return cron_trigger(t.expr, tz, _time(t.start_at, "start_at"), _time(t.end_at, "end_at"))
    run_at = _time(t.run_at, "run_at")
    assert run_at is not None
    return DateTrigger(run_date=run_at, timezone=UTC)


def validate(s: Schedule) -> BaseTrigger:
    """Raise InvalidSchedule for what no trigger can express; the trigger otherwise."""
    if not s.id or len(s.id) > 200 or any(c.isspace() or c == "/" for c in s.id):
        raise InvalidSchedule(f"invalid schedule id {s.id!r} (1-200 characters, no '/' or spaces)")
    if not s.task:
        raise InvalidSchedule("a schedule needs a task")
    for name in ("jitter", "misfire_grace_time", "expires"):
        value = getattr(s, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise InvalidSchedule(f"{name} must be a number of seconds >= 0, not {value!r}")
    if s.max_instances is not None and not 1 <= s.max_instances <= RECENT:
        raise InvalidSchedule(f"max_instances must be 1-{RECENT}, not {s.max_instances}")
    if s.priority is not None and not 0 <= s.priority <= 9:
        raise InvalidSchedule(f"priority must be 0-9, not {s.priority}")
    return trigger_of(s)


# -- fire times and run ids --------------------------------------------------------------------
def to_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def first_fire(trigger: BaseTrigger, at_or_after: int) -> int | None:
    """The first fire time (ms) at or after ``at_or_after``, or None when there is none."""
    now = datetime.fromtimestamp(at_or_after / 1000, UTC)
    found = trigger.get_next_fire_time(None, now)
    if found is None or to_ms(found) < at_or_after:  # a date trigger answers its past date
        return None
    return to_ms(found)


def resume_point(s: Schedule, state: State, now: int) -> int:
    """Where a (new) leader resumes ``s``: after its last fire, after its last change, and
    no earlier than its misfire grace allows."""
    after = max(s.updated_at, (state.last_fire + 1) if state.last_fire is not None else 0)
    if s.misfire_grace_time is not None:
        after = max(after, now - int(s.misfire_grace_time * 1000))
    return after


def next_run(s: Schedule, state: State, now: int) -> int | None:
    """``next_run_at`` as shown: the next nominal fire time, None while paused or done."""
    if not s.enabled:
        return None
    try:
        return first_fire(trigger_of(s), max(resume_point(s, state, now), now))
    except InvalidSchedule:
        return None


def _digest(schedule_id: str, fire_ms: int) -> bytes:
    return hashlib.sha256(f"{schedule_id}\n{fire_ms}".encode()).digest()


def run_id(schedule_id: str, fire_ms: int) -> str:
    """The run id of one fire: a UUIDv7 whose time is the fire time and whose random bits
    hash (schedule, fire time). Every scheduler computes the same id, and submit.lua
    refuses an id that exists, so a fire time yields one run even across a failover."""
    rand = int.from_bytes(_digest(schedule_id, fire_ms)[:10], "big")
    value = (fire_ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def fire_ms_of(run: str) -> int:
    """The fire time a scheduled run's id carries (its UUIDv7 timestamp)."""
    return int(run.replace("-", "")[:12], 16)


def jitter_ms(s: Schedule, fire_ms: int) -> int:
    """A delay in [0, jitter] that every scheduler derives alike for this fire."""
    if not s.jitter:
        return 0
    fraction = int.from_bytes(_digest(s.id, fire_ms)[10:14], "big") / 2**32
    return int(fraction * s.jitter * 1000)
