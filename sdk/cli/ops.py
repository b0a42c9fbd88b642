"""``celeriac revoke`` and ``celeriac dlq list|requeue``: operating on runs from a shell."""

from __future__ import annotations

from typing import Any

import click
import httpx

from sdk.cli.client import gateway_option, make_app, one_line_errors
from sdk.cli.options import common_options, resolve_settings, setup_logging
from sdk.cli.output import echo_json, table
from sdk.errors import from_code


@click.command("revoke")
@click.argument("run_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--terminate", is_flag=True, help="Also stop the run if it is running.")
@gateway_option
@common_options
def revoke(
    run_ids: tuple[str, ...],
    terminate: bool,
    gateway_url: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Revoke runs: queued ones never start; with --terminate running ones are stopped."""
    setup_logging(log_level)
    app = make_app(gateway_url, redis_url, prefix)
    with one_line_errors():
        for run_id in run_ids:
            app.AsyncResult(run_id).revoke(terminate=terminate)
            click.echo(f"{run_id}  revoked{' (terminating)' if terminate else ''}")


def _gateway(gateway_url: str | None) -> httpx.Client:
    url = resolve_settings(gateway_url=gateway_url).gateway_url
    if not url:
        raise click.UsageError(
            "dlq needs a gateway: give --gateway-url or set CELERIAC_GATEWAY_URL"
        )
    return httpx.Client(base_url=url, timeout=30)


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        err = response.json().get("error", {})
        raise from_code(err.get("code", "error"), err.get("message", response.text))
    return response.json()


@click.group("dlq")
def dlq() -> None:
    """Runs that exhausted their deliveries (state DEAD)."""


@dlq.command("list")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help='Print JSON: {"items": [...]}.')
@gateway_option
def dlq_list(queue: str | None, limit: int, as_json: bool, gateway_url: str | None) -> None:
    """List dead runs, newest first."""
    params: dict[str, Any] = {"limit": limit, **({"queue": queue} if queue else {})}
    with one_line_errors(), _gateway(gateway_url) as http:
        page = _checked(http.get("/dead-letters", params=params))
    if as_json:
        echo_json(page)
        return
    rows = [
        (
            run["id"],
            run["task"] or "",
            run["queue"] or "",
            str(run["attempts"]),
            (run.get("error") or {}).get("type", ""),
        )
        for run in page["items"]
    ]
    click.echo(table(("ID", "TASK", "QUEUE", "ATTEMPTS", "ERROR"), rows))


@dlq.command("requeue")
@click.argument("run_ids", nargs=-1, required=True, metavar="ID...")
@gateway_option
def dlq_requeue(run_ids: tuple[str, ...], gateway_url: str | None) -> None:
    """Put dead runs back on their queues."""
    with one_line_errors(), _gateway(gateway_url) as http:
        for run_id in run_ids:
            _checked(http.post(f"/dead-letters/{run_id}/requeue"))
            click.echo(f"{run_id}  requeued")
