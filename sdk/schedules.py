"""Periodic tasks as producers declare them: Celery's ``crontab``, ``beat_schedule`` and
``App.add_periodic_task``. Pure data: the scheduler (gateway/scheduler/) turns these into
schedules; nothing here talks to Redis or knows APScheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sdk.canvas import Chain, Chord, Group, Signature
from sdk.errors import ConfigurationError

if TYPE_CHECKING:
    from sdk.app import App

Field = int | str | Iterable[int | str]


def _field(value: Field) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.replace(" ", "") or "*"
    return ",".join(str(v) for v in sorted(value, key=str))


@dataclass(frozen=True)
class crontab:  # Celery's lowercase name, so beat_schedule modules port unchanged
    """Celery's ``crontab(minute=, hour=, day_of_week=, day_of_month=, month_of_year=)``.

    Each field takes what cron takes (``"*/15"``, ``"1-5"``, ``"mon,fri"``), an int, or a
    set of ints. Days of the week count as in cron: 0 (or 7) is Sunday, 1 Monday.
    """

    minute: Field = "*"
    hour: Field = "*"
    day_of_week: Field = "*"
    day_of_month: Field = "*"
    month_of_year: Field = "*"

    @property
    def expr(self) -> str:
        """The 5-field cron expression: minute hour day-of-month month day-of-week."""
        parts = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        return " ".join(_field(p) for p in parts)

    def __str__(self) -> str:
        return f"<crontab: {self.expr}>"


Schedule = float | int | timedelta | crontab


@dataclass(frozen=True)
class PeriodicTask:
    """One static schedule: a task name, when, and the run's arguments and options."""

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def every(self) -> float | None:
        """Seconds between runs for an interval schedule; None for a crontab."""
        if isinstance(self.schedule, crontab):
            return None
        if isinstance(self.schedule, timedelta):
            return self.schedule.total_seconds()
        return float(self.schedule)


class Signal:
    """Celery's ``app.on_after_configure``: ``@app.on_after_configure.connect`` receivers
    are called once with ``sender=app`` when the scheduler reads the static schedules."""

    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []
        self.sent = False

    def connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.receivers.append(fn)
        return fn

    def send(self, sender: object) -> None:
        if self.sent:
            return
        self.sent = True
        for fn in self.receivers:
            fn(sender=sender)


def task_name(sig: object) -> str:
    """The task a periodic entry names: a Task object, a signature, or its name."""
    name = getattr(sig, "name", sig)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a periodic task needs a task or a task name, not {sig!r}")
    return name


def default_name(task: str, schedule: Schedule, args: Iterable[Any]) -> str:
    """Celery names an unnamed entry after its repr; ours is stable across processes."""
    if isinstance(schedule, crontab):
        when = "cron:" + schedule.expr.replace(" ", "_")
    else:
        seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        when = f"every:{float(seconds):g}s"
    return f"{task}({','.join(map(repr, args))})@{when}".replace(" ", "")


_NOT_KEPT = frozenset({"link", "link_error"})  # the scheduler stores no callbacks (yet)


def periodic_task(
    name: str | None,
    sig: object,
    schedule: Schedule,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> PeriodicTask:
    """One entry for a task, its name or a signature (``add.s(1, 2)``): a signature's
    arguments and options are used where ``args``, ``kwargs`` and ``options`` give none.
    A chain, group or chord, or callbacks, are a ConfigurationError: the scheduler
    stores one task call."""
    if isinstance(sig, Chain | Group | Chord):
        raise ConfigurationError(f"a periodic task is one signature, not {sig!r}")
    args, kwargs, options = tuple(args), dict(kwargs or {}), dict(options or {})
    if isinstance(sig, Signature):
        args = args or sig.args
        kwargs = kwargs or dict(sig.kwargs)
        options = {**sig.options, **options}
    if _NOT_KEPT & set(options):
        raise ConfigurationError(f"a periodic task keeps no link= or link_error= ({sig!r})")
    task = task_name(sig)
    entry_name = name or default_name(task, schedule, args)
    return PeriodicTask(entry_name, task, schedule, args, kwargs, options)


def from_beat_schedule(beat: Mapping[str, Any]) -> list[PeriodicTask]:
    """``app.conf.beat_schedule``: ``{name: {"task", "schedule", "args", "kwargs",
    "options"}}``; ``task`` may be a task, its name or a signature."""
    found = []
    for name, entry in beat.items():
        if not isinstance(entry, Mapping) or "task" not in entry or "schedule" not in entry:
            raise ConfigurationError(f"beat_schedule[{name!r}] needs 'task' and 'schedule'")
        found.append(
            periodic_task(
                str(name),
                entry["task"],
                entry["schedule"],
                entry.get("args") or (),
                entry.get("kwargs"),
                entry.get("options"),
            )
        )
    return found


def static_schedules(app: App) -> list[PeriodicTask]:
    """Every static schedule of ``app``: its ``beat_schedule`` and ``add_periodic_task`` calls
    (after ``on_after_configure`` receivers ran). A later entry of one name wins."""
    app.on_after_configure.send(app)
    beat = app.conf.extra.get("beat_schedule") or {}
    entries = {e.name: e for e in [*from_beat_schedule(beat), *app.periodic_tasks]}
    return list(entries.values())
