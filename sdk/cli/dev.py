"""``celeriac dev``: everything on one machine, in one command.

An embedded Valkey server (AOF on, data under ``--data-dir``) unless a Redis URL is
given, then the gateway and one worker as child processes, supervised: if one dies,
everything stops with a non-zero exit; Ctrl-C or SIGTERM is a warm shutdown of all.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from sdk.cli.options import common_options, quiet_http_logs, resolve_settings, setup_logging
from sdk.cli.supervise import Child, StopSignals, Supervisor, describe_exit, stop_signals
from sdk.embedded import EmbeddedServer
from sdk.errors import CeleriacError

GRACE = 10.0  # seconds children get for a warm shutdown before SIGKILL
READY_TIMEOUT = 60.0  # seconds the gateway gets to answer /readyz before we say so


@dataclass(frozen=True)
class Plan:
    """What ``celeriac dev`` runs, resolved from its flags."""

    app: str
    host: str
    port: int
    pool: str
    concurrency: int
    queues: str | None
    prefix: str
    log_level: str

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def children(self, redis_url: str) -> list[Child]:
        cli = [sys.executable, "-m", "sdk.cli"]
        common = ["--redis-url", redis_url, "--prefix", self.prefix, "--log-level", self.log_level]
        gateway = [*cli, "gateway", "--host", self.host, "--port", str(self.port), *common]
        worker = [*cli, "worker", "-A", self.app, "--pool", self.pool]
        worker += ["-c", str(self.concurrency), *common]
        worker += ["--grace", str(GRACE - 2)]  # hand back what is left before we SIGKILL
        if self.queues:
            worker += ["-Q", self.queues]
        scheduler = [*cli, "scheduler", "-A", self.app, *common]
        return [Child("gateway", gateway), Child("worker", worker), Child("scheduler", scheduler)]


@click.command("dev")
@click.option(
    "-A",
    "--app",
    "app",
    default="examples",
    show_default=True,
    metavar="MODULE",
    help="Module (or module:attr) holding the App whose tasks the worker runs.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway address.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Gateway port."
)
@click.option(
    "--data-dir",
    default=".celeriac",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded server keeps its data (AOF).",
)
@click.option("--pool", default="threads", show_default=True, help="Worker pool.")
@click.option(
    "-c",
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker concurrency.",
)
@click.option(
    "-Q",
    "--queues",
    default=None,
    metavar="Q1,Q2",
    help="Queues the worker consumes [default: default].",
)
@common_options
def command(
    app: str,
    host: str,
    port: int,
    data_dir: Path,
    pool: str,
    concurrency: int,
    queues: str | None,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Run an embedded Valkey, the gateway, a worker and the scheduler, for development."""
    setup_logging(log_level)
    quiet_http_logs(log_level)
    settings = resolve_settings(redis_url=redis_url, prefix=prefix)
    plan = Plan(app, host, port, pool, concurrency, queues, settings.prefix, log_level.lower())
    _check_port(host, port)
    data_dir = data_dir.resolve()
    with _data_dir_lock(data_dir), _redis(settings.redis_url, data_dir) as (url, embedded):
        code = _run(plan, url, embedded, data_dir)
    sys.exit(code)


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        # As the server will: connections of a previous run in TIME_WAIT must not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port"
            ) from None


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One ``celeriac dev`` per data dir: two servers on one AOF would corrupt it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "dev.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise click.ClickException(
                f"another celeriac dev (pid {lock.read().strip() or '?'}) uses {data_dir}"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextmanager
def _redis(redis_url: str | None, data_dir: Path) -> Iterator[tuple[str, bool]]:
    """The given Redis URL, or an embedded server started now and stopped cleanly after."""
    if redis_url:
        yield redis_url, False
        return
    server = EmbeddedServer(data_dir / "redis", persistent=True)
    try:
        server.start()
    except CeleriacError as exc:
        raise click.ClickException(exc.message) from None
    try:
        yield server.url, True
    finally:
        server.stop()


def _run(plan: Plan, redis_url: str, embedded: bool, data_dir: Path) -> int:
    """Start the children, supervise them until a signal or a death; the exit code."""
    supervisor = Supervisor(plan.children(redis_url))
    with stop_signals() as signals:
        supervisor.start()
        try:
            code = _watch(supervisor, signals, plan, redis_url, embedded, data_dir)
        finally:
            supervisor.stop(GRACE, force=signals)
    click.echo(
        "celeriac dev stopped." if code == 0 else "celeriac dev stopped after a failure.", err=True
    )
    return code


def _watch(
    supervisor: Supervisor,
    signals: StopSignals,
    plan: Plan,
    redis_url: str,
    embedded: bool,
    data_dir: Path,
) -> int:
    """Wait for a stop signal (exit code 0) or a child's death (1); greet once ready."""
    ready, warn_at = False, time.monotonic() + READY_TIMEOUT
    while not signals.wait(0.2):
        dead = supervisor.exited()
        if dead is not None and dead.process is not None:
            how = describe_exit(dead.process.returncode)
            click.echo(
                f"celeriac dev: the {dead.name} exited unexpectedly ({how}); stopping everything.",
                err=True,
            )
            return 1
        if not ready:
            ready = _gateway_ready(plan.gateway_url)
            if ready:
                click.echo(banner(plan, redis_url, embedded, data_dir))
            elif time.monotonic() > warn_at:
                warn_at = float("inf")
                click.echo(f"celeriac dev: still waiting for {plan.gateway_url}/readyz", err=True)
    return 0


def _gateway_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def banner(plan: Plan, redis_url: str, embedded: bool, data_dir: Path) -> str:
    url = plan.gateway_url
    task = "examples.add" if plan.app == "examples" else "<task name>"
    redis_note = "embedded, AOF on" if embedded else "external"
    lines = [
        "",
        "Celeriac dev is running.",
        f"  gateway   {url}   (API description: {url}/openapi.json)",
        f"  redis     {redis_url}   ({redis_note})",
        f"  data dir  {data_dir}" + ("" if embedded else "   (unused: external Redis)"),
        f"  worker    -A {plan.app} --pool {plan.pool} -c {plan.concurrency}"
        + (f" -Q {plan.queues}" if plan.queues else ""),
        f"  scheduler -A {plan.app}   (schedules: {url}/schedules, celeriac schedules list)",
        "",
        "Try:",
        f"  curl -X POST {url}/tasks/{task} -H 'content-type: application/json'"
        " -d '{\"args\":[2,3]}'",
        f"  curl '{url}/runs/<id>?wait=5'",
        f"  export CELERIAC_GATEWAY_URL={url}; celeriac submit {task} --args '[2,3]' --wait",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
