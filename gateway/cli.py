"""``celeriac gateway``: serve the HTTP gateway with uvicorn."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from typing import Any

import click
import uvicorn

from gateway.app import create_app
from gateway.scheduler import Static
from gateway.scheduler.cli import static_of
from gateway.webhooks import service as webhooks
from sdk.cli.options import common_options, resolve_settings, setup_logging
from sdk.config import ENV_VARS, Settings
from sdk.errors import CeleriacError

GRACEFUL_SHUTDOWN = 5  # seconds in-flight requests (long-polls) get on SIGTERM


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exit_quietly_on_signals() -> None:
    """After its graceful shutdown uvicorn re-raises the signal it caught; let that end the
    process with a status (0 for SIGTERM, 130 for Ctrl-C) instead of a signal death."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as CELERIAC_* variables, for worker processes that rebuild them from env."""
    values = {name: getattr(settings, name) for name in ENV_VARS}
    return {ENV_VARS[n]: str(v) for n, v in values.items() if v is not None}


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes."
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback --host although API keys are not enforced yet.",
)
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run a scheduler in this process (one of any number leads).",
)
@click.option(
    "-A",
    "--app",
    "app_spec",
    default=None,
    metavar="MODULE[:ATTR]",
    help="With --with-scheduler: the App whose static schedules to upsert.",
)
@common_options
def command(
    host: str,
    port: int,
    workers: int,
    insecure: bool,
    with_scheduler: bool,
    app_spec: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Serve the HTTP gateway."""
    setup_logging(log_level)
    settings = resolve_settings(redis_url=redis_url, prefix=prefix)
    try:
        webhooks.check(settings)  # here, not only in each server process: one line, no traceback
    except CeleriacError as exc:
        raise click.ClickException(exc.message) from None
    if not settings.redis_url:
        raise click.ClickException("no Redis URL: pass --redis-url or set CELERIAC_REDIS_URL")
    if not is_loopback(host) and not insecure:
        raise click.ClickException(
            f"refusing to listen on {host}: API keys are not implemented yet, so anyone who "
            "can reach it could submit runs; use a loopback address or pass --insecure"
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_level": log_level.lower(),
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
    }
    scheduler = _scheduler(with_scheduler, app_spec, workers, settings)
    exit_quietly_on_signals()
    if workers > 1:  # each worker process imports the factory and reads the settings from env
        os.environ.update(settings_env(settings))
        uvicorn.run("gateway.app:create_app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings, scheduler), **options)


def _scheduler(
    enabled: bool, app_spec: str | None, workers: int, settings: Settings
) -> Static | None:
    """``--with-scheduler``: the static schedules to upsert (none without ``-A``)."""
    if not enabled:
        return None
    if workers > 1:
        raise click.UsageError("--with-scheduler runs in one process: use --workers 1, or run "
                               "`celeriac scheduler` beside the gateway")  # fmt: skip
    try:
        static, _ = static_of(app_spec, settings)
    except CeleriacError as exc:
        raise click.ClickException(exc.message) from None
    return static or Static("", [])  # dynamic schedules only
