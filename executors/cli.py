"""``celeriac worker``: run an executor for the tasks of one App."""

from __future__ import annotations

import subprocess
import sys

import click

from executors.pools import available, create_pool
from sdk.cli.options import common_options, resolve_settings, setup_logging
from sdk.config import Settings
from sdk.errors import CeleriacError


@click.command("worker")
@click.option(
    "-A",
    "--app",
    "app_spec",
    default=None,
    metavar="MODULE[:ATTR]",
    help="Module holding the App (and its tasks); optional for --pool http.",
)
@click.option(
    "--pool",
    default="prefork",
    show_default=True,
    type=click.Choice(available()),
    help="Where runs execute.",
)
@click.option(
    "-c",
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Runs executing at once.",
)
@click.option(
    "-Q",
    "--queues",
    default=None,
    metavar="Q1,Q2",
    help="Queues to consume (replaces the default queue).",
)
@click.option(
    "--prefetch",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Runs each slot reads ahead.",
)
@click.option(
    "--max-tasks-per-child",
    default=0,
    type=click.IntRange(0),
    help="Replace a slot after this many runs (0: never).",
)
@click.option(
    "--max-memory-per-child",
    default=0,
    type=click.IntRange(0),
    metavar="MB",
    help="Replace a prefork child above this resident size (0: never).",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a warm shutdown waits for running runs.",
)
@click.option("--name", default=None, help="Worker id (default: host and a random suffix).")
@click.option(
    "--logfile",
    default=None,
    type=click.Path(dir_okay=False),
    help="Append logs to this file instead of stderr.",
)
@click.option(
    "-B",
    "--beat",
    is_flag=True,
    help="Also run a scheduler (`celeriac scheduler -A` as a child process).",
)
@common_options
def command(
    app_spec: str | None,
    pool: str,
    concurrency: int,
    queues: str | None,
    prefetch: int,
    max_tasks_per_child: int,
    max_memory_per_child: int,
    grace: float,
    name: str | None,
    logfile: str | None,
    beat: bool,
    redis_url: str | None,
    prefix: str | None,
    log_level: str,
) -> None:
    """Run an executor consuming QUEUES with a pool of slots."""
    setup_logging(log_level, logfile)
    try:
        # The pool first: a pool may need to prepare the process before the user's tasks
        # are imported (gevent patches the standard library).
        pool_impl = create_pool(pool)
        from executors.loader import load_app
        from executors.pools.base import TaskSourcePool
        from executors.worker import Worker, WorkerOptions
        from sdk.app import App

        if app_spec is None and not isinstance(pool_impl, TaskSourcePool):
            raise click.ClickException(f"-A MODULE is needed: pool {pool} runs Python tasks")
        app = load_app(app_spec) if app_spec is not None else App("celeriac")
        app.conf = resolve_settings(app.conf, redis_url=redis_url, prefix=prefix)
        if not app.conf.redis_url:
            raise click.ClickException("no Redis URL: pass --redis-url or set CELERIAC_REDIS_URL")
        names = tuple(q.strip() for q in (queues or app.conf.default_queue).split(",") if q.strip())
        options = WorkerOptions(
            queues=names,
            concurrency=concurrency,
            prefetch=prefetch,
            max_tasks_per_child=max_tasks_per_child,
            max_memory_per_child_mb=max_memory_per_child,
            grace_s=grace,
            name=name,
            max_deliveries=app.conf.max_deliveries,
            dead_after_s=app.conf.worker_dead_after,
        )
        worker = Worker(app=app, pool=pool_impl, options=options)
    except CeleriacError as exc:
        raise click.ClickException(exc.message) from exc
    if beat and app_spec is None:
        raise click.ClickException("-B needs -A MODULE: the scheduler reads the App's schedules")
    scheduler = _start_scheduler(app_spec, app.conf, log_level) if beat and app_spec else None
    try:
        code = worker.run()
    finally:
        if scheduler is not None:
            scheduler.terminate()  # releases the lease at once, so a standby takes over
            scheduler.wait(10)
    raise SystemExit(code)


def _start_scheduler(app_spec: str, conf: Settings, log_level: str) -> subprocess.Popen[bytes]:
    """``-B``: the scheduler is the gateway's component, so it runs as its own command
    rather than being imported into the executor (they never import each other)."""
    cmd = [sys.executable, "-m", "sdk.cli", "scheduler", "-A", app_spec]
    cmd += ["--redis-url", conf.redis_url or "", "--prefix", conf.prefix, "--log-level", log_level]
    return subprocess.Popen(cmd)
