"""Redis URLs and the clients made from them (sdk/redis_url.py, sdk/clients.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from sdk.clients import async_client, sync_client
from sdk.config import Settings
from sdk.embedded import EmbeddedCluster
from sdk.errors import ConfigurationError
from sdk.protocol.keys import Keys
from sdk.redis_url import split_cluster_url


def test_a_cluster_url_names_its_nodes_and_keeps_credentials_tls_and_options() -> None:
    found = split_cluster_url(
        "rediss+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001,h?ssl_cert_reqs=none"
    )
    assert found.nodes == (("10.0.0.1", 7000), ("::1", 7001), ("h", 6379))
    assert found.first == "rediss://u:p%40ss@10.0.0.1:7000/0?ssl_cert_reqs=none"
    with pytest.raises(ConfigurationError, match="database 0"):
        split_cluster_url("redis+cluster://h:1/1")


def test_partitions_default_to_the_urls_form_unless_set() -> None:
    assert Settings(redis_url="redis://h:1/0").partition_count == 1
    assert Settings(redis_url="redis+cluster://h:1").partition_count == 16
    assert Settings(redis_url="redis+cluster://h:1", partitions=4).partition_count == 4
    env = {"CELERIAC_REDIS_URL": "rediss+cluster://h:1", "CELERIAC_PARTITIONS": "8"}
    assert Keys.from_settings(Settings().with_env(env)).partitions == 8
    assert Keys.from_settings(Settings(redis_url="rediss+cluster://h:1")).partitions == 16


def test_each_url_gets_its_kind_of_client(valkey_cluster: EmbeddedCluster, redis_url: str) -> None:
    single, cluster = sync_client(redis_url), sync_client(valkey_cluster.url)
    assert type(single) is redis.Redis and isinstance(cluster, RedisCluster)
    assert len(cluster.get_primaries()) == 3  # found from the URL's nodes
    assert cluster.ping() and single.ping()
    single.close(), cluster.close()

    async def main() -> tuple[object, object, int]:
        one = async_client(redis_url, max_connections=5, wait=1.0)
        many = async_client(valkey_cluster.url, max_connections=5)
        try:
            await one.ping()
            await many.ping()
            return type(one), type(many), one.connection_pool.max_connections  # type: ignore[union-attr]
        finally:
            await one.aclose()
            await many.aclose()

    assert asyncio.run(main()) == (aredis.Redis, AsyncRedisCluster, 5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_cluster_no_node_of_which_answers_is_a_connection_error(closed_port: int) -> None:
    with pytest.raises(redis.ConnectionError, match="no node of the Redis Cluster answers"):
        sync_client(f"redis+cluster://127.0.0.1:{closed_port}")
