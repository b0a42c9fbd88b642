"""Celeriac's side of the benchmark: the tasks its workers import (``-A`` this module)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from loadtests.peers import SLEEP_S
from sdk import App

app = App("bench", redis_url=os.environ.get("BENCH_REDIS_URL"))


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


# The asyncio pool runs coroutines on its loop; these are what a user of that pool writes.
@app.task(name="bench.add_async")
async def add_async(x: int, y: int) -> int:
    return x + y


@app.task(name="bench.echo_async")
async def echo_async(s: str) -> str:
    return s


@app.task(name="bench.sleep")
def sleep(x: int, y: int) -> int:
    """I/O-bound work: the concurrency, not the CPU, sets the pace (gevent patches it)."""
    time.sleep(SLEEP_S)
    return x + y


@app.task(name="bench.sleep_async")
async def sleep_async(x: int, y: int) -> int:
    await asyncio.sleep(SLEEP_S)
    return x + y


# The http pool's comparison (loadtests/http_pool.py): the same POST, made by a Python
# task on the threads pool, over one pooled client.
_http = httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=64))


@app.task(name="bench.post")
def post(url: str, x: int, y: int) -> object:
    return _http.post(url, json={"args": [x, y]}).json()
