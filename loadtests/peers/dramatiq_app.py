"""Dramatiq's side of the benchmark: the Redis broker and the Results middleware on
BENCH_REDIS_URL, so that every run's result is stored as Celeriac and Celery store theirs.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_add", store_results=True)
def add(x: int, y: int) -> int:
    return x + y


@dramatiq.actor(actor_name="bench_echo", store_results=True)
def echo(s: str) -> str:
    return s
