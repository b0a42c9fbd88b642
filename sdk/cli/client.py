"""``celeriac submit`` and ``celeriac result``: the producer's side, from a shell.

Both go through ``sdk.App``: over HTTP when a gateway URL is set (``--gateway-url`` or
``CELERIAC_GATEWAY_URL``), else straight to Redis (``--redis-url``/``CELERIAC_REDIS_URL``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import click
import httpx
import redis

from sdk import states
from sdk.app import App
from sdk.calls import Call, SendOptions
from sdk.cli.options import common_options, quiet_http_logs, resolve_settings, setup_logging
from sdk.cli.output import echo_json, fields, one_line, table, value_text
from sdk.errors import CeleriacError
from sdk.runs import RunJSON

F = TypeVar("F", bound=Callable[..., Any])

BATCH = 500  # runs per request when submitting many
PROGRESS_FROM = 100  # show a progress bar from this many runs
LONG_POLL = 60.0  # one wait request at most this long (the gateway's cap)


def _json_of(kind: type[list[Any]] | type[dict[str, Any]]) -> Callable[..., Any]:
    """A click callback that parses an option's value as JSON of one expected type."""
    what = "a JSON array" if kind is list else "a JSON object"

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> Any:
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(data, kind):
            raise click.BadParameter(f"must be {what}, not {value}")
        return data

    return parse


def gateway_option(fn: F) -> F:
    return click.option(
        "--gateway-url",
        default=None,
        metavar="URL",
        help="Gateway to talk to [env CELERIAC_GATEWAY_URL]; without one, Redis is used directly.",
    )(fn)


def make_app(gateway_url: str | None, redis_url: str | None, prefix: str | None) -> App:
    """An App for this command: flags beat the environment, and a gateway beats Redis."""
    settings = resolve_settings(gateway_url=gateway_url, redis_url=redis_url, prefix=prefix)
    if redis_url and not gateway_url:  # an explicit --redis-url wins over an env gateway
        settings = replace(settings, gateway_url=None)
    if not settings.gateway_url and not settings.redis_url:
        raise click.UsageError(
            "nowhere to send runs: give --gateway-url (celeriac dev serves "
            "http://127.0.0.1:8000) or --redis-url, or set CELERIAC_GATEWAY_URL"
        )
    app = App("celeriac-cli")
    app.conf = settings  # already resolved, flags included; App would let env win over them
    return app


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Whatever goes wrong talking to Celeriac becomes one line and exit code 1."""
    try:
        yield
    except CeleriacError as exc:
        raise click.ClickException(one_line(exc.message or type(exc).__name__)) from None
    except (httpx.HTTPError, httpx.InvalidURL, redis.RedisError, ValueError) as exc:
        raise click.ClickException(one_line(f"{type(exc).__name__}: {exc}")) from None


def wait_run(app: App, run_id: str, timeout: float) -> RunJSON | None:
    """The run once terminal, or as it stands after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(deadline - time.monotonic(), 0.0)
        run = app.transport.wait(run_id, min(remaining, LONG_POLL))
        if (run is not None and run["state"] in states.TERMINAL) or remaining <= 0:
            return run


def _result_value(app: App, run: RunJSON) -> Any:
    if "result_encoded" in run:  # a pickled result: only the SDK can open it
        return app.AsyncResult(run["id"]).get(timeout=0, propagate=False)
    return run.get("result")


def _send(app: App, calls: Sequence[Call]) -> list[str]:
    if len(calls) < PROGRESS_FROM:
        return [r.id for r in app.send_calls(calls)]
    ids: list[str] = []
    with click.progressbar(length=len(calls), label="submitting", file=sys.stderr) as bar:
        for start in range(0, len(calls), BATCH):
            chunk = calls[start : start + BATCH]
            ids += [r.id for r in app.send_calls(chunk)]
            bar.update(len(chunk))
    return ids


def _wait_all(app: App, ids: Sequence[str], timeout: float) -> list[RunJSON | None]:
    deadline = time.monotonic() + timeout
    if len(ids) < PROGRESS_FROM:
        return [wait_run(app, i, max(deadline - time.monotonic(), 0.0)) for i in ids]
    with click.progressbar(ids, label="waiting", file=sys.stderr) as bar:
        return [wait_run(app, i, max(deadline - time.monotonic(), 0.0)) for i in bar]


def _state_line(run_id: str, run: RunJSON | None) -> str:
    if run is None:
        return f"run {run_id} not found"
    error = run.get("error") or {}
    detail = f"{error.get('type')}: {error.get('message')}" if error else "not finished in time"
    return f"run {run_id} {run['state']}: {detail}"


def _print_waited(app: App, ids: Sequence[str], runs: Sequence[RunJSON | None]) -> bool:
    """Human output after --wait; True if every run succeeded."""
    ok = all(r is not None and r["state"] == states.SUCCESS for r in runs)
    if len(ids) == 1:
        run = runs[0]
        if run is not None and run["state"] == states.SUCCESS:
            click.echo(value_text(_result_value(app, run)))
        else:
            click.echo(_state_line(ids[0], run), err=True)
        return ok
    rows = []
    for run_id, run in zip(ids, runs, strict=True):
        state = run["state"] if run else "UNKNOWN"
        if run is not None and state == states.SUCCESS:
            shown = value_text(_result_value(app, run))
        else:
            error = (run or {}).get("error") or {}
            shown = f"{error.get('type')}: {error.get('message')}" if error else ""
        rows.append([run_id, state, shown])
    click.echo(table(["ID", "STATE", "RESULT"], rows))
    return ok


@click.command("submit")
@click.argument("name")
@click.option(
    "--args",
    "args_",
    default="[]",
    callback=_json_of(list),
    metavar="JSON",
    help="Positional arguments, a JSON array: '[2, 3]'.",
)
@click.option(
    "--kwargs",
    "kwargs_",
    default="{}",
    callback=_json_of(dict),
    metavar="JSON",
    help="Keyword arguments, a JSON object: '{\"x\": 2}'.",
)
@click.option("--queue", default=None, help="Queue [default: the task's].")
@click.option("--priority", type=click.IntRange(0, 9), default=None, help="0-9, 9 highest.")
@click.option(
    "--countdown",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Start no sooner than this many seconds from now.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Submit this many runs (batched).",
)
@click.option("--wait", is_flag=True, help="Wait for the outcome and print it.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: give up after this long.",
)
@click.option("--json", "as_json", is_flag=True, help='Print JSON: {"items": [...]}.')
@gateway_option
@common_options
def submit(
    name: str,
    args_: list[Any],
    kwargs_: dict[str, Any],
    queue: str | None,
    priority: int | None,
    countdown: float | None,
    count: int,
    wait: bool,
    timeout: float,
    as_json: bool,
    gateway_url: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Submit COUNT runs of the task NAME; print their ids (or, with --wait, outcomes)."""
    setup_logging(log_level)
    quiet_http_logs(log_level)
    app = make_app(gateway_url, redis_url, prefix)
    options = SendOptions(queue=queue, priority=priority, countdown=countdown)
    calls = [Call(name, args_, kwargs_, options)] * count
    with one_line_errors():
        ids = _send(app, calls)
        runs = _wait_all(app, ids, timeout) if wait else None
    if as_json:
        items = runs if runs is not None else [{"id": i, "task": name} for i in ids]
        echo_json({"items": items})
        ok = runs is None or all(r is not None and r["state"] == states.SUCCESS for r in runs)
    elif runs is None:
        click.echo("\n".join(ids))
        ok = True
    else:
        with one_line_errors():
            ok = _print_waited(app, ids, runs)
    app.close()
    if not ok:
        raise SystemExit(1)


def _describe(run: RunJSON) -> str:
    shown = [
        (key, run.get(key))
        for key in (
            "id",
            "task",
            "state",
            "result",
            "error",
            "attempts",
            "queue",
            "worker",
            "created_at",
            "started_at",
            "finished_at",
            "runtime_ms",
            "parent_id",
            "root_id",
            "meta",
        )
    ]
    error = run.get("error") or {}
    pairs = []
    for key, value in shown:
        if key == "error":
            value = f"{error.get('type')}: {error.get('message')}" if error else None
        if value is not None or key in {"result", "error"}:
            pairs.append((key, value if isinstance(value, str) else value_text(value)))
    text = fields(pairs)
    if error.get("traceback"):
        text += "\ntraceback:\n" + error["traceback"].rstrip()
    return text


@click.command("result")
@click.argument("run_id", metavar="ID")
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Wait up to SECONDS for the run to finish.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's JSON.")
@gateway_option
@common_options
def result(
    run_id: str,
    wait: float | None,
    as_json: bool,
    gateway_url: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Show the run ID: its state, result or error."""
    setup_logging(log_level)
    quiet_http_logs(log_level)
    app = make_app(gateway_url, redis_url, prefix)
    with one_line_errors():
        run = app.transport.run(run_id) if wait is None else wait_run(app, run_id, wait)
        if run is not None and "result_encoded" in run and run["state"] == states.SUCCESS:
            run = {**run, "result": _result_value(app, run)}
    app.close()
    if run is None:
        raise click.ClickException(f"no run {run_id} (unknown, or its record has expired)")
    if as_json:
        echo_json(run)
    else:
        click.echo(_describe(run))
