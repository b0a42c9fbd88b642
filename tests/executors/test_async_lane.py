"""The asyncio consumer's lane: pipelined script calls on one connection, each reply to
its caller, through a flushed script cache and a killed connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from executors.async_lane import AsyncLane
from sdk.protocol import Message, new_id, now_ms, plans
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, Submission

KEYS, LIMITS = Keys(), Limits()


def submission(run_id: str) -> Any:
    message = Message(id=run_id, task="t.add", queue="default", created_at=now_ms())
    return plans.submit(KEYS, LIMITS, Submission(message, b'{"args":[1,2]}'))


@pytest.fixture
def url(redis_server: Any) -> Iterator[str]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    yield redis_server.url


def run(url: str, scenario: Any) -> Any:
    async def main() -> Any:
        client = aredis.Redis.from_url(url)
        lane = AsyncLane(client)
        try:
            return await scenario(lane)
        finally:
            await lane.close()
            await client.aclose()

    return asyncio.run(asyncio.wait_for(main(), 20))


def test_concurrent_calls_each_get_their_own_reply(url: str) -> None:
    ids = [new_id() for _ in range(300)]

    async def scenario(lane: AsyncLane) -> tuple[list[bool], list[bool]]:
        first = await asyncio.gather(*(lane(submission(i)) for i in ids))
        again = await asyncio.gather(*(lane(submission(i)) for i in ids[::-1]))
        return first, again

    first, again = run(url, scenario)
    assert first == [True] * 300  # each created its run
    assert again == [False] * 300  # and each duplicate was told so, in its own reply
    with redis.Redis.from_url(url) as client:
        assert all(client.exists(KEYS.run(i)) for i in ids)


def test_a_flushed_script_cache_is_loaded_again(url: str) -> None:
    async def scenario(lane: AsyncLane) -> list[bool]:
        created = [await lane(submission(new_id()))]
        with redis.Redis.from_url(url) as client:
            client.script_flush()
        created += await asyncio.gather(*(lane(submission(new_id())) for _ in range(5)))
        return created

    assert run(url, scenario) == [True] * 6


def test_a_killed_connection_fails_the_waiting_calls_then_reconnects(url: str) -> None:
    async def scenario(lane: AsyncLane) -> bool:
        assert await lane(submission(new_id()))
        with redis.Redis.from_url(url) as client:
            client.client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(redis.ConnectionError):
            await lane(submission(new_id()))
        return await lane(submission(new_id()))

    assert run(url, scenario) is True


def test_an_error_reply_is_raised_to_its_caller_only(url: str) -> None:
    broken = new_id()
    with redis.Redis.from_url(url) as client:
        client.set(KEYS.run(broken), "not a hash")

    async def scenario(lane: AsyncLane) -> list[Any]:
        calls = [lane(submission(new_id())), lane(submission(broken)), lane(submission(new_id()))]
        return await asyncio.gather(*calls, return_exceptions=True)

    ok, error, also_ok = run(url, scenario)
    assert ok is True and also_ok is True
    assert isinstance(error, redis.ResponseError) and "WRONGTYPE" in str(error)
