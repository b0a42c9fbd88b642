"""Static schedules (beat_schedule, add_periodic_task, on_after_configure) and the upsert
rule: written at start, never over a runtime edit, removed when no longer declared."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import redis.asyncio as aredis

from gateway.scheduler.model import Cron, Interval
from gateway.scheduler.static import to_schedule, upsert
from gateway.scheduler.store import Store
from sdk import App, crontab
from sdk.protocol.keys import Keys
from sdk.schedules import static_schedules


def make_app() -> App:
    app = App("proj", timezone="Asia/Shanghai")
    app.config_from_object(
        {"beat_schedule": {"every-10s": {"task": "proj.add", "schedule": 10.0, "args": [1, 2]}}}
    )

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.on_after_configure.connect
    def setup(sender: App, **_: object) -> None:
        sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), add, (2, 3),
                                 name="monday")  # fmt: skip
        sender.add_periodic_task(timedelta(minutes=5), "proj.add", (4, 5))

    return app


def test_crontab_is_celery_shaped() -> None:
    assert crontab(hour=7, minute=30, day_of_week=1).expr == "30 7 * * 1"
    assert crontab(minute="*/15", day_of_week="mon-fri").expr == "*/15 * * * mon-fri"
    assert crontab(minute=0, hour={0, 12}).expr == "0 0,12 * * *"


def test_static_entries_and_upsert_rule(redis_url: str) -> None:
    app = make_app()
    entries = {e.name: e for e in static_schedules(app)}
    assert set(entries) == {
        "every-10s",
        "monday",
        "proj.add(4,5)@every:300s",
    }
    defs = [to_schedule(e, app.main, app.conf.timezone, 1_000) for e in entries.values()]
    by_id = {d.id: d for d in defs}
    assert by_id["every-10s"].trigger == Interval(seconds=10.0)
    assert by_id["monday"].trigger == Cron(expr="30 7 * * 1", timezone="Asia/Shanghai")

    async def scenario() -> None:
        client = aredis.Redis.from_url(redis_url)
        store = Store(client, Keys())
        await upsert(store, "proj", defs)
        assert set(await store.all()) == set(by_id)
        # A runtime edit (source "api") survives the next start's upsert.
        edited = (await store.all())["monday"]

        await store.put(msgspec.structs.replace(edited, kwargs={"edited": True}, source="api"))
        later = [to_schedule(e, app.main, app.conf.timezone, 2_000) for e in entries.values()]
        await upsert(store, "proj", later)
        stored = await store.all()
        assert stored["monday"].kwargs == {"edited": True}
        assert stored["every-10s"].created_at == 1_000  # unchanged: times kept
        # Dropped from the code: deleted; another app's schedules are left alone.
        await upsert(store, "proj", [d for d in later if d.id != "every-10s"])
        assert "every-10s" not in await store.all()
        await upsert(store, "other", [])
        assert "monday" in await store.all()
        await client.aclose()

    asyncio.run(scenario())
