"""Auto-pipelining against a real server: coalescing, per-command errors, NOSCRIPT."""

from __future__ import annotations

import asyncio
import hashlib

import redis
import redis.asyncio as aredis

from sdk.pipelining import AutoPipeline, script_calls
from sdk.protocol.lua import Lua


def lua(name: str, source: str) -> Lua:
    return Lua(name, source, hashlib.sha1(source.encode()).hexdigest())


ECHO = lua("echo", "return {KEYS[1], ARGV[1]}")
COUNT = lua("count", "return #ARGV")


def calls_of(r: redis.Redis, command: str) -> int:
    stats = r.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0))


def test_concurrent_commands_share_round_trips(r: redis.Redis, redis_url: str) -> None:
    async def main() -> list[object]:
        client = aredis.Redis.from_url(redis_url)
        auto = AutoPipeline(client, max_in_flight=1)
        try:
            await client.set("p:0", "zero")
            return list(
                await asyncio.gather(*(auto.execute("INCR", f"p:{i}") for i in range(1, 301)))
            )
        finally:
            await client.aclose()

    clients_before = r.info("stats")["total_connections_received"]
    replies = asyncio.run(main())
    assert replies == [1] * 300
    # 300 commands, one pipeline: one connection opened besides the SET's (which it reused)
    assert r.info("stats")["total_connections_received"] - clients_before == 1


def test_a_failing_command_fails_only_its_caller(r: redis.Redis, redis_url: str) -> None:
    async def main() -> tuple[object, BaseException | object, object]:
        client = aredis.Redis.from_url(redis_url)
        auto = AutoPipeline(client)
        try:
            await client.set("p:text", "abc")
            return tuple(  # type: ignore[return-value]
                await asyncio.gather(
                    auto.execute("SET", "p:a", "1"),
                    auto.execute("INCR", "p:text"),
                    auto.execute("GET", "p:a"),
                    return_exceptions=True,
                )
            )
        finally:
            await client.aclose()

    ok, failed, got = asyncio.run(main())
    assert ok is True
    assert isinstance(failed, redis.ResponseError)
    assert got == b"1"


def test_scripts_reload_after_the_server_forgot_them(r: redis.Redis, redis_url: str) -> None:
    async def main() -> list[object]:
        client = aredis.Redis.from_url(redis_url)
        auto = AutoPipeline(client)
        try:
            first = await auto.script(ECHO, ["k"], ["1"])
            await client.script_flush()
            again = await asyncio.gather(
                *(auto.script(ECHO, ["k"], [str(i)]) for i in range(5)),
                auto.script(COUNT, [], ["a", "b"]),  # another script, in the same batch
            )
            return [first, *again]
        finally:
            await client.aclose()

    r.script_flush()
    echoed = [[b"k", str(i).encode()] for i in range(5)]
    assert asyncio.run(main()) == [[b"k", b"1"], *echoed, 2]
    assert r.script_exists(ECHO.sha, COUNT.sha) == [True, True]


def test_script_calls_batch_in_one_pipeline_without_script_exists(r: redis.Redis) -> None:
    r.script_flush()
    exists_before, loads_before = calls_of(r, "script|exists"), calls_of(r, "script|load")
    calls = [(ECHO, ["a"], [i]) for i in range(50)] + [(COUNT, [], [1, 2, 3])]
    replies = script_calls(r, calls)
    assert replies == [*([b"a", str(i).encode()] for i in range(50)), 3]
    assert calls_of(r, "script|exists") == exists_before  # NOSCRIPT reloads instead
    assert calls_of(r, "script|load") - loads_before == 2  # once per script, not per call
    assert script_calls(r, calls) == replies
    assert calls_of(r, "script|load") - loads_before == 2  # known now: nothing reloaded
