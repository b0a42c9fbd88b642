"""A slot's own connection for its one script call per run.

A slot makes one ``step.lua`` call per run from one thread. Through the client, each
call would also pass the connection pool (a lock and a fork check), the retry wrapper and
the command-observability hooks: a third of a slot's CPU per run, measured on a no-op
task. The lane sends ``EVALSHA`` on a connection the slot owns. It never retries by
itself: after a connection error the caller decides (the consumer backs off, and the
outcome it holds is sent again).

On a Redis Cluster (``ClusterLane``) the slot keeps one connection per node, and sends a
call to the node that serves its keys' slot (every call's keys are of one slot). A call
that meets a moved slot goes once through the cluster client, which follows the
redirection and updates the slot map the lane routes by; after a connection error the
map is read again before the next call, as a failover may have moved the slot.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypeVar

import hiredis
import redis
from redis.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    TryAgainError,
)

from sdk.clients import SyncClient
from sdk.protocol.drivers import Scripts, evalsha
from sdk.protocol.plans import ScriptCall

R = TypeVar("R")


class ScriptLane:
    def __init__(self, client: redis.Redis) -> None:
        # Any: redis-py leaves Connection untyped
        self._connection: Any = client.connection_pool.make_connection()

    def __call__(self, call: ScriptCall[R]) -> R:
        try:
            return call.parse(self._send(call))
        except NoScriptError:  # a restarted or flushed server: load it, then once more
            self._connection.send_command("SCRIPT", "LOAD", call.script.source)
            self._connection.read_response()  # the same sha: it is the source's digest
            return call.parse(self._send(call))
        except (redis.ConnectionError, redis.TimeoutError):
            self._connection.disconnect()  # reconnects next call
            raise

    def _send(self, call: ScriptCall[Any]) -> Any:
        # Packed by hiredis straight away: the connection's packer first copies every
        # argument through a Python generator, which cost a tenth of the slot's CPU.
        self._connection.send_packed_command([hiredis.pack_command(evalsha(call))])
        return self._connection.read_response()

    def close(self) -> None:
        self._connection.disconnect()


class ClusterLane:
    """A slot's own connections to the nodes of a Redis Cluster, one per node."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client
        self._scripts = Scripts(client)
        self._connections: dict[str, Any] = {}  # by node name
        self._stale = False  # read the slot map again before the next call

    def __call__(self, call: ScriptCall[R]) -> R:
        connection = self._connection(call)
        try:
            return call.parse(_send(connection, call))
        except NoScriptError:  # a restarted or flushed node: load it, then once more
            connection.send_command("SCRIPT", "LOAD", call.script.source)
            connection.read_response()
            return call.parse(_send(connection, call))
        except (AskError, TryAgainError, ClusterDownError):  # AskError covers MOVED
            return self._scripts(call)  # the client follows it and mends its slot map
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # reconnects next call
            self._stale = True
            raise

    def _connection(self, call: ScriptCall[Any]) -> Any:
        if self._stale:
            try:
                self._client.nodes_manager.initialize()
            except RedisClusterException as exc:  # no node answers: the consumer backs off
                raise redis.ConnectionError(f"no node of the Redis Cluster answers: {exc}") from exc
            self._stale = False
        node = self._client.get_node_from_key(call.keys[0])  # type: ignore[no-untyped-call]
        connection = self._connections.get(node.name)
        if connection is None:
            pool = self._client.get_redis_connection(node).connection_pool
            connection = self._connections[node.name] = pool.make_connection()
        return connection

    def close(self) -> None:
        for connection in self._connections.values():
            connection.disconnect()


Lane: TypeAlias = ScriptLane | ClusterLane


def lane_for(client: SyncClient) -> Lane:
    """The slot's lane over ``client``: a ``ClusterLane`` on a Redis Cluster."""
    if isinstance(client, RedisCluster):
        return ClusterLane(client)
    return ScriptLane(client)


def _send(connection: Any, call: ScriptCall[Any]) -> Any:
    connection.send_packed_command([hiredis.pack_command(evalsha(call))])
    return connection.read_response()
