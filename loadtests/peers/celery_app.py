"""Celery 5's side of the benchmark: broker and result backend on BENCH_REDIS_URL.

Celery's defaults, but for mingle and gossip (worker-to-worker chatter at start-up and
while running, which only costs a single worker time) and a quiet log.
"""

from __future__ import annotations

import os
import time

from celery import Celery

from loadtests.peers import SLEEP_S

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=URL, backend=URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="bench.xsum")
def xsum(values: list[int]) -> int:
    """A chord's body: the sum of its header's results."""
    return sum(values)


@app.task(name="bench.echo")
def echo(s: str) -> str:
    return s


@app.task(name="bench.sleep")
def sleep(x: int, y: int) -> int:
    time.sleep(SLEEP_S)  # patched by gevent under -P gevent
    return x + y
