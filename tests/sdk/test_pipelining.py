"""Auto-pipelining against a real server: coalescing, per-command errors, NOSCRIPT; and
on the local Redis Cluster: a batch split by node, moved slots, dropped connections."""

from __future__ import annotations

import asyncio
import hashlib

import redis
import redis.asyncio as aredis
from redis.cluster import RedisCluster

from sdk.clients import async_client
from sdk.embedded import EmbeddedCluster
from sdk.pipelining import AutoPipeline, script_calls
from sdk.protocol.lua import Lua
from tests.conftest import slot_moved


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


# -- on a Redis Cluster ----------------------------------------------------------------------------
def cluster_keys(count: int) -> list[str]:
    """Keys spread over every node of the local cluster (and over many slots)."""
    return [f"p:{i}" for i in range(count)]


def test_a_batch_on_a_cluster_is_split_by_node_and_answers_in_order(
    valkey_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    keys = cluster_keys(60)
    assert len({cluster_client.get_node_from_key(k).name for k in keys}) == 3

    async def main() -> list[object]:
        client = async_client(valkey_cluster.url)
        auto = AutoPipeline(client, max_in_flight=1)
        try:
            return list(
                await asyncio.gather(
                    *(auto.execute("INCR", key) for key in keys),
                    *(auto.script(ECHO, [key], ["x"]) for key in keys[:5]),
                    auto.script(COUNT, [], ["a", "b"]),  # no key: any node
                    auto.execute("HGETALL", "p:none"),  # a reply callback still applies
                )
            )
        finally:
            await client.aclose()

    replies = asyncio.run(main())
    assert replies == [1] * 60 + [[k.encode(), b"x"] for k in keys[:5]] + [2, {}]
    assert [cluster_client.get(k) for k in keys] == [b"1"] * 60


def test_a_batch_on_a_cluster_follows_a_moved_slot_and_survives_dead_connections(
    valkey_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    async def main() -> list[object]:
        client = async_client(valkey_cluster.url)
        auto = AutoPipeline(client)
        try:
            await auto.execute("SET", "p:warm", "1")  # the slot map, read before the move
            with slot_moved(valkey_cluster, "p:moved"):
                moved = await asyncio.gather(
                    auto.execute("INCR", "p:moved"), auto.script(ECHO, ["p:moved"], ["y"])
                )
                # Every pooled connection dropped (as by a restart): tried once more
                cluster_client.client_kill_filter(_type="normal", target_nodes="primaries")
                after = await asyncio.gather(*(auto.execute("GET", "p:warm") for _ in range(3)))
                await client.script_flush()  # forgotten on every node: loaded again
                again = await auto.script(ECHO, ["p:moved"], ["z"])
                return [*moved, *after, again, await client.delete("p:moved")]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [1, [b"p:moved", b"y"], b"1", b"1", b"1", [b"p:moved", b"z"], 1]
