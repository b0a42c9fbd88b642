"""``celeriac tasks put|rm``: register and remove HTTP tasks (docs/http-executor.md)."""

from __future__ import annotations

import json
from typing import Any

import click

from sdk.cli.client import gateway_option, make_app, one_line_errors
from sdk.cli.options import common_options, setup_logging


def _option(raw: str) -> tuple[str, Any]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{raw!r}: give NAME=VALUE, e.g. max_retries=5")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value  # a plain string, as rate_limit=10/s


@click.group("tasks")
def tasks() -> None:
    """Tasks with an HTTP target, run by `celeriac worker --pool http`."""


@tasks.command("put")
@click.argument("name")
@click.option("--url", required=True, help="The target runs are sent to.")
@click.option("--method", default="POST", show_default=True)
@click.option("--header", "headers", multiple=True, metavar="NAME:VALUE", help="Sent each time.")
@click.option("--timeout", default=30.0, show_default=True, type=float, help="Seconds a try.")
@click.option("--concurrency", default=None, type=click.IntRange(1), help="Cap per worker.")
@click.option("--queue", default=None, help="Its runs' queue (default: the default queue).")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE", help="Task option.")
@gateway_option
@common_options
def put(
    name: str,
    url: str,
    method: str,
    headers: tuple[str, ...],
    timeout: float,
    concurrency: int | None,
    queue: str | None,
    options: tuple[str, ...],
    gateway_url: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Register (or replace) NAME: each of its runs is sent to --url."""
    setup_logging(log_level)
    parsed = dict(_option(o) for o in options)
    sent = {k.strip(): v.strip() for k, _, v in (h.partition(":") for h in headers)}
    app = make_app(gateway_url, redis_url, prefix)
    with one_line_errors():
        app.register_http_task(
            name,
            url,
            method=method,
            headers=sent,
            timeout=timeout,
            concurrency=concurrency,
            queue=queue,
            **parsed,
        )
    click.echo(f"{name}  -> {method.upper()} {url}")


@tasks.command("rm")
@click.argument("name")
@gateway_option
@common_options
def rm(
    name: str, gateway_url: str | None, redis_url: str | None, prefix: str | None, log_level: str
) -> None:
    """Remove the HTTP task NAME."""
    setup_logging(log_level)
    app = make_app(gateway_url, redis_url, prefix)
    with one_line_errors():
        if not app.unregister_http_task(name):
            raise click.ClickException(f"no HTTP task named {name!r}")
    click.echo(f"{name}  removed")
