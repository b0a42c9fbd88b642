"""Flags every command takes (SPEC §8), and turning them into Settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sdk.config import Settings
from sdk.errors import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])


def common_options(fn: F) -> F:
    """``--redis-url``, ``--prefix`` and ``--log-level``, for every command."""
    fn = click.option(
        "--log-level",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        help="Logging verbosity.",
    )(fn)
    fn = click.option(
        "--prefix", default=None, help="Redis key prefix [env CELERIAC_PREFIX; default celeriac]."
    )(fn)
    fn = click.option(
        "--redis-url",
        default=None,
        metavar="URL",
        help="Redis/Valkey URL [env CELERIAC_REDIS_URL].",
    )(fn)
    return fn


def resolve_settings(base: Settings | None = None, **flags: Any) -> Settings:
    """Flags beat environment variables, which beat ``base`` (App settings) and defaults.
    A malformed setting is a one-line error, not a traceback."""
    try:
        return (base or Settings()).with_env().updated(flags)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None


def setup_logging(level: str, logfile: str | None = None) -> None:
    """Log to stderr, or to ``logfile`` (appending, as Celery's ``--logfile``)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
        filename=logfile,
    )


def quiet_http_logs(level: str) -> None:
    """httpx logs every request at INFO; a command's own HTTP calls are noise below DEBUG."""
    if level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)
