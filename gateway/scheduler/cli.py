"""``celeriac scheduler`` (a scheduler process) and ``celeriac schedules list|add|rm|pause|
resume|run`` (schedules from a shell: through the gateway if one is named, else Redis)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import click
import httpx

from gateway.catalog import Catalog
from gateway.scheduler.admin import Admin
from gateway.scheduler.service import SchedulerService, Static
from gateway.scheduler.static import to_schedule
from sdk.broker import AsyncBroker
from sdk.cli.client import gateway_option, one_line_errors
from sdk.cli.options import common_options, quiet_http_logs, resolve_settings, setup_logging
from sdk.cli.output import echo_json, table
from sdk.clients import AsyncClient, async_client
from sdk.config import Settings
from sdk.errors import CeleriacError, from_code
from sdk.loader import load_app
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits
from sdk.schedules import static_schedules

T = TypeVar("T")


def static_of(app_spec: str | None, settings: Settings) -> tuple[Static | None, Settings]:
    """The static schedules of the App ``-A`` names (and its settings under the flags)."""
    if app_spec is None:
        return None, settings
    app = load_app(app_spec)
    settings = resolve_settings(app.conf, redis_url=settings.redis_url, prefix=settings.prefix)
    now = now_ms()
    found = [to_schedule(p, app.main, settings.timezone, now) for p in static_schedules(app)]
    return Static(app.main, found), settings


async def _serve(client: AsyncClient, settings: Settings, static: Static | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await SchedulerService(client, settings, static).run(stop)
    finally:
        await client.aclose()


@click.command("scheduler")
@click.option("-A", "--app", "app_spec", default=None, metavar="MODULE[:ATTR]",
              help="App whose beat_schedule and add_periodic_task entries to upsert.")  # fmt: skip
@common_options
def scheduler(
    app_spec: str | None, redis_url: str | None, prefix: str | None, log_level: str
) -> None:
    """Run a scheduler: one of any number leads (a lease in Redis) and fires schedules."""
    setup_logging(log_level)
    settings = resolve_settings(redis_url=redis_url, prefix=prefix)
    try:
        static, settings = static_of(app_spec, settings)
    except CeleriacError as exc:
        raise click.ClickException(exc.message) from None
    if not settings.redis_url:
        raise click.ClickException("no Redis URL: pass --redis-url or set CELERIAC_REDIS_URL")
    client = async_client(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    asyncio.run(_serve(client, settings, static))


# -- celeriac schedules ------------------------------------------------------------------------
Call = Callable[[Admin], Awaitable[T]]


class Target:
    """Where ``celeriac schedules`` sends its requests: the gateway's HTTP API, or Redis."""

    def __init__(self, gateway_url: str | None, settings: Settings) -> None:
        self.url = gateway_url
        self.settings = settings

    def http(self, method: str, path: str, body: Any = None) -> Any:
        assert self.url is not None
        headers = {}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        with httpx.Client(base_url=self.url, timeout=30, headers=headers) as client:
            response = client.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise CeleriacError(f"HTTP {response.status_code}: {response.text}") from None
            raise from_code(error.get("code", ""), error.get("message", ""))
        return response.json() if response.content else None

    def redis(self, call: Call[T]) -> T:
        async def go() -> T:
            assert self.settings.redis_url is not None
            client = async_client(self.settings.redis_url)
            try:
                keys = Keys.from_settings(self.settings)
                admin = Admin.over(
                    AsyncBroker(client, keys, Limits.from_settings(self.settings)),
                    Catalog(client, keys),
                    self.settings,
                )
                return await call(admin)
            finally:
                await client.aclose()

        return asyncio.run(go())

    def do(self, method: str, path: str, call: Call[T], body: Any = None) -> Any:
        with one_line_errors():
            return self.http(method, path, body) if self.url else self.redis(call)


@click.group("schedules")
@gateway_option
@common_options
@click.pass_context
def schedules(
    ctx: click.Context,
    gateway_url: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Periodic and one-off schedules: list, add, rm, pause, resume, run."""
    setup_logging(log_level)
    quiet_http_logs(log_level)
    settings = resolve_settings(gateway_url=gateway_url, redis_url=redis_url, prefix=prefix)
    if redis_url and not gateway_url:  # an explicit --redis-url wins over an env gateway
        settings = replace(settings, gateway_url=None)
    if not settings.gateway_url and not settings.redis_url:
        raise click.UsageError("give --gateway-url or --redis-url (or CELERIAC_GATEWAY_URL)")
    ctx.obj = Target(settings.gateway_url, settings)


def _row(s: dict[str, Any]) -> list[str]:
    t = s["trigger"]
    when = {
        "interval": lambda: f"every {t.get('seconds', 0):g}s",
        "cron": lambda: f"cron '{t.get('expr')}' {t.get('timezone') or ''}".rstrip(),
        "date": lambda: f"at {t.get('run_at')}",
    }[t["type"]]()
    enabled = "yes" if s["enabled"] else "paused"
    return [s["id"], s["task"], when, enabled, s["next_run_at"] or "-", s["last_run_at"] or "-"]


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print JSON: {"items": [...]}.')
@click.pass_obj
def list_(target: Target, as_json: bool) -> None:
    """List every schedule with its next and last run."""
    found = target.do("GET", "/schedules", lambda a: a.list())
    items = found["items"] if isinstance(found, dict) else found
    if as_json:
        echo_json({"items": items, "next": None})
        return
    headers = ["ID", "TASK", "WHEN", "ENABLED", "NEXT RUN", "LAST RUN"]
    click.echo(table(headers, [_row(s) for s in items]))


_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _every(value: str) -> dict[str, Any]:
    match = _EVERY.match(value)
    if not match:
        raise click.BadParameter(f"use a number with s, m, h, d or w (10s, 5m), not {value!r}")
    return {"type": "interval", _UNIT[match[2] or "s"]: float(match[1])}


def _json_arg(kind: type, value: str, what: str) -> Any:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not valid JSON ({exc.msg})") from None
    if not isinstance(data, kind):
        raise click.BadParameter(f"{what} must be a JSON {kind.__name__}")
    return data


@schedules.command("add")
@click.option("--task", required=True, help="Task name.")
@click.option("--every", default=None, metavar="10s", help="Interval: 10s, 5m, 2h, 1d, 1w.")
@click.option("--cron", default=None, metavar="EXPR", help="5-field cron: '30 7 * * 1'.")
@click.option("--tz", default=None, metavar="ZONE", help="IANA time zone of --cron.")
@click.option("--args", "args_", default="[]", metavar="JSON", help="Positional arguments.")
@click.option("--kwargs", "kwargs_", default="{}", metavar="JSON", help="Keyword arguments.")
@click.option("--id", "schedule_id", default=None, help="Schedule id [default: generated].")
@click.option("--queue", default=None, help="Queue [default: the task's].")
@click.pass_obj
def add(target: Target, task: str, every: str | None, cron: str | None, tz: str | None,
        args_: str, kwargs_: str, schedule_id: str | None, queue: str | None) -> None:  # fmt: skip
    """Add a schedule (--every or --cron); print its id."""
    if (every is None) == (cron is None):
        raise click.UsageError("give exactly one of --every and --cron")
    trigger = _every(every) if every else {"type": "cron", "expr": cron}
    if tz:
        trigger["timezone"] = tz
    body: dict[str, Any] = {"task": task, "trigger": trigger}
    body["args"] = _json_arg(list, args_, "--args")
    body["kwargs"] = _json_arg(dict, kwargs_, "--kwargs")
    for key, value in (("id", schedule_id), ("queue", queue)):
        if value is not None:
            body[key] = value
    created = target.do("POST", "/schedules", lambda a: a.create(body), body)
    click.echo(created["id"])


def _one(name: str, method: str, suffix: str, help_: str, act: Callable[[Admin, str], Any]) -> None:
    @schedules.command(name, help=help_)
    @click.argument("schedule_id", metavar="ID")
    @click.pass_obj
    def command(target: Target, schedule_id: str) -> None:
        found = target.do(
            method, f"/schedules/{schedule_id}{suffix}", lambda a: act(a, schedule_id)
        )
        click.echo(found["id"] if isinstance(found, dict) else schedule_id)


_one("rm", "DELETE", "", "Delete the schedule ID.", lambda a, i: a.delete(i))
_one("pause", "POST", "/pause", "Pause the schedule ID.", lambda a, i: a.set_enabled(i, False))
_one("resume", "POST", "/resume", "Resume the schedule ID.", lambda a, i: a.set_enabled(i, True))
_one("run", "POST", "/run", "Run the schedule ID now; print the run id.", lambda a, i: a.run_now(i))

__all__ = ["scheduler", "schedules"]
