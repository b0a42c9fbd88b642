"""Redis clients from a URL (``sdk/redis_url.py``): one server or a Cluster, sync or asyncio.

Every component builds its clients here. ``redis://``, ``rediss://`` and ``unix://`` give
``redis.Redis`` / ``redis.asyncio.Redis``; ``redis+cluster://`` and ``rediss+cluster://``
give ``RedisCluster`` (both flavours), started from every node the URL names, which
finds the others and follows slot moves by itself.

The cluster clients are no subclass of ``Redis``: code that takes either is typed with
``SyncClient`` or ``AsyncClient``, and mypy holds it to what both offer. The commands
are the same; what differs is below them (a cluster has no one connection pool, and a
command's keys must be of one slot), and the few places that go there (the
auto-pipeline, the slot's lane, the events tail) ask ``isinstance(client, ...Cluster)``.

When no node of a Cluster answers, redis-py raises ``RedisClusterException`` ("Redis
Cluster cannot be connected"), not a ``ConnectionError``: the gateway answers it with
503 as any Redis error.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.asyncio.connection import parse_url as parse_async_url
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from sdk.redis_url import check_redis_url, is_cluster_url, split_cluster_url

SyncClient: TypeAlias = redis.Redis | RedisCluster
AsyncClient: TypeAlias = aredis.Redis | AsyncRedisCluster

#: What a call raises while Redis cannot be reached: one server's errors, and a Cluster
#: client's "no node answers" (it raises that whatever went wrong below it).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, RedisClusterException)


def sync_client(url: str, **options: Any) -> SyncClient:
    """A client of ``url``; ``options`` go to every connection (``socket_timeout``,
    ``health_check_interval``...). One server's client connects on first use; redis-py's
    cluster client reads the slot map at once, and raises ``redis.ConnectionError`` here
    when no node answers."""
    check_redis_url(url)
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    cluster = split_cluster_url(url)
    others = [ClusterNode(host, port) for host, port in cluster.nodes[1:]]  # type: ignore[no-untyped-call]
    try:
        return RedisCluster(url=cluster.first, startup_nodes=others, **options)
    except RedisClusterException as exc:  # what redis-py raises for "no node answers"
        if isinstance(exc.__cause__, redis.ConnectionError | redis.TimeoutError):
            raise redis.ConnectionError(f"no node of the Redis Cluster answers: {exc}") from exc
        raise


def async_client(
    url: str, *, max_connections: int | None = None, wait: float | None = None, **options: Any
) -> AsyncClient:
    """As ``sync_client``, for asyncio. ``max_connections`` caps the connections (per node
    on a Cluster); with ``wait`` a single server's pool makes a caller wait up to that
    many seconds for a free one rather than fail. A Cluster's pools cannot wait: past
    the cap a command fails at once (``MaxConnectionsError``)."""
    check_redis_url(url)
    if not is_cluster_url(url):
        if wait is None:
            return aredis.Redis.from_url(url, max_connections=max_connections, **options)
        pool = aredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections or 50, timeout=wait, **options
        )
        return aredis.Redis.from_pool(pool)
    cluster = split_cluster_url(url)
    kwargs: dict[str, Any] = dict(parse_async_url(cluster.first))
    kwargs.pop("host", None), kwargs.pop("port", None), kwargs.pop("db", None)
    if kwargs.pop("connection_class", None) is AsyncSSLConnection:
        kwargs["ssl"] = True
    if max_connections is not None:
        kwargs["max_connections"] = max_connections
    nodes = [AsyncClusterNode(host, port) for host, port in cluster.nodes]
    return AsyncRedisCluster(startup_nodes=nodes, **kwargs, **options)


__all__ = [
    "UNREACHABLE",
    "AsyncClient",
    "SyncClient",
    "async_client",
    "sync_client",
]
