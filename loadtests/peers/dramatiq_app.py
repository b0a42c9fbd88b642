"""Dramatiq's side of the benchmark: the Redis broker and the Results middleware on
BENCH_REDIS_URL, so that every run's result is stored as Celeriac and Celery store theirs.
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from loadtests.peers import SLEEP_S

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

# redis-py's pools hold 100 connections unless told; a thousand greenlets need more.
POOL = redis.ConnectionPool.from_url(URL, max_connections=2048)
broker = RedisBroker(connection_pool=POOL)
backend = RedisBackend(client=redis.Redis(connection_pool=POOL))
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_add", store_results=True)
def add(x: int, y: int) -> int:
    return x + y


@dramatiq.actor(actor_name="bench_echo", store_results=True)
def echo(s: str) -> str:
    return s


@dramatiq.actor(actor_name="bench_sleep", store_results=True)
def sleep(x: int, y: int) -> int:
    time.sleep(SLEEP_S)  # patched by dramatiq-gevent
    return x + y
