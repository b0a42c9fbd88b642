"""Creating, changing and reading schedules at runtime: what ``/schedules`` and the
``celeriac schedules`` command do, with validation and the public JSON shape."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.catalog import Catalog
from gateway.scheduler.launcher import Launcher
from gateway.scheduler.model import Schedule, State, next_run, validate
from gateway.scheduler.store import Store
from sdk.broker import AsyncBroker
from sdk.config import Settings
from sdk.errors import InvalidArguments, InvalidSchedule, TaskNotFound
from sdk.protocol import new_id, now_ms, rfc3339

#: Fields the server owns: ignored when a client sends them back.
READ_ONLY = (
    "source",
    "app",
    "created_at",
    "updated_at",
    "anchor",
    "next_run_at",
    "last_run_at",
    "last_run_id",
    "links",
)


def public(s: Schedule, state: State, now: int) -> dict[str, Any]:
    """The JSON of ``GET /schedules/{id}`` (and of each list item)."""
    data: dict[str, Any] = msgspec.to_builtins(s)
    del data["anchor"]
    data["created_at"] = rfc3339(s.created_at)
    data["updated_at"] = rfc3339(s.updated_at)
    data["next_run_at"] = rfc3339(next_run(s, state, now))
    data["last_run_at"] = rfc3339(state.last_run_at)
    data["last_run_id"] = state.last_run_id
    links = {"self": f"/schedules/{s.id}", "runs": f"/runs?task={s.task}"}
    if state.last_run_id:
        links["last_run"] = f"/runs/{state.last_run_id}"
    data["recent_runs"] = [f"/runs/{r}" for r in state.recent]
    data["links"] = links
    return data


def _convert(data: dict[str, Any]) -> Schedule:
    try:
        return msgspec.convert(data, Schedule)
    except msgspec.ValidationError as exc:
        raise InvalidSchedule(f"invalid schedule: {exc}") from None


class Admin:
    def __init__(self, store: Store, catalog: Catalog, launcher: Launcher, timezone: str) -> None:
        self.store = store
        self.catalog = catalog
        self.launcher = launcher
        self.timezone = timezone

    @classmethod
    def over(cls, broker: AsyncBroker, catalog: Catalog, settings: Settings) -> Admin:
        """An Admin sharing the gateway's (or a command's) broker and catalog."""
        store = Store(broker.redis, broker.keys)
        launcher = Launcher(broker, store, catalog, settings.default_queue)
        return cls(store, catalog, launcher, settings.timezone)

    def _body(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidSchedule("a schedule must be a JSON object")
        data = {k: v for k, v in body.items() if k not in READ_ONLY}
        trigger = data.get("trigger")
        if isinstance(trigger, dict) and trigger.get("type") == "cron":
            data["trigger"] = {"timezone": self.timezone, **trigger}
        return data

    async def _check_task(self, s: Schedule) -> None:
        try:
            entry = await self.catalog.get(s.task)
        except TaskNotFound as exc:
            raise InvalidSchedule(exc.message, details={"task": s.task}) from None
        try:
            entry.check(s.args, s.kwargs)
        except InvalidArguments as exc:
            raise InvalidSchedule(exc.message, details=exc.details) from None

    async def create(self, body: Any) -> dict[str, Any]:
        now = now_ms()
        data = {"id": new_id(), **self._body(body)}
        s = _convert({**data, "created_at": now, "updated_at": now, "anchor": now})
        validate(s)
        await self._check_task(s)
        await self.store.create(s)
        return public(s, State(), now)

    async def patch(self, schedule_id: str, body: Any) -> dict[str, Any]:
        old, state = await self.store.get(schedule_id)
        changes = self._body(body)
        if changes.get("id", schedule_id) != schedule_id:
            raise InvalidSchedule("a schedule's id cannot change")
        now = now_ms()
        merged = {**msgspec.to_builtins(old), **changes, "updated_at": now, "source": "api"}
        if "trigger" in changes:
            merged["anchor"] = now  # a new interval counts from the change
        s = _convert(merged)
        validate(s)
        if {"task", "args", "kwargs"} & set(changes):
            await self._check_task(s)
        await self.store.put(s)
        return public(s, state, now)

    async def set_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]:
        """Pause or resume; a resumed schedule does not catch up on the paused time."""
        old, state = await self.store.get(schedule_id)
        now = now_ms()
        s = msgspec.structs.replace(old, enabled=enabled, updated_at=now, source="api")
        await self.store.put(s)
        return public(s, state, now)

    async def delete(self, schedule_id: str) -> None:
        await self.store.delete(schedule_id)

    async def get(self, schedule_id: str) -> dict[str, Any]:
        s, state = await self.store.get(schedule_id)
        return public(s, state, now_ms())

    async def list(self) -> list[dict[str, Any]]:
        defs, states = await self.store.all(), await self.store.states()
        now = now_ms()
        return [public(defs[i], states.get(i) or State(), now) for i in sorted(defs)]

    async def run_now(self, schedule_id: str) -> dict[str, Any]:
        s, _ = await self.store.get(schedule_id)
        sub = await self.launcher.run_now(s)
        run = sub.message.id
        state = "SCHEDULED" if sub.message.eta else "PENDING"
        return {"id": run, "task": s.task, "state": state, "links": {"self": f"/runs/{run}"}}
