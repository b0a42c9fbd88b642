"""Pipelined Redis calls: many commands, one round trip.

``AutoPipeline`` coalesces the commands that concurrent coroutines issue in the same
event-loop tick into one pipeline, as ioredis's ``enableAutoPipelining`` does: under load
a thousand concurrent requests cost a handful of round trips and connections instead of a
thousand; at rest a command waits one loop tick. ``script_calls`` does the same for a
batch known up front, on a synchronous client.

Script calls go out as plain ``EVALSHA``: redis-py's own pipelines ask ``SCRIPT EXISTS``
before every batch that holds a script, which would double the round trips. A server
that has not seen a script (restarted, flushed) answers NOSCRIPT for that command only;
the script is loaded and those commands alone are sent again.

On a Redis Cluster a batch is split by the node that serves each command's key (a
script call's first key, else the command's first argument), and each node gets its
share as one pipeline, all at once. A command that meets a moved slot (``MOVED``,
``ASK``, ``TRYAGAIN``, ``CLUSTERDOWN``) is sent once more through the cluster client,
which follows the redirection and updates its slot map; a node that cannot be reached
fails only its commands, after the slot map is refreshed and they were tried once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MaxConnectionsError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)

from sdk.clients import AsyncClient, SyncClient
from sdk.protocol.lua import Lua

MAX_BATCH = 512  # commands per pipeline
MAX_IN_FLIGHT = 2  # pipelines under way at once; more commands wait for the next tick
REDIRECTED = (AskError, TryAgainError, ClusterDownError)  # AskError covers MovedError
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def _unreachable(outcome: object) -> bool:
    """A node's connection failed (not: its pool is at its cap, which waits for no one)."""
    return isinstance(outcome, UNREACHABLE) and not isinstance(outcome, MaxConnectionsError)


def _evalsha(sha: str, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    return ("EVALSHA", sha, len(keys), *keys, *args)


def script_calls(
    client: SyncClient, calls: Sequence[tuple[Lua, Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """Each ``(script, keys, args)`` call in one round trip (one per node on a Cluster,
    where redis-py's cluster pipeline splits the batch); replies in order. A call's error
    is raised after the whole batch has run."""
    todo = list(range(len(calls)))
    replies: list[Any] = [None] * len(calls)
    for _ in range(2):  # the second pass only after NOSCRIPT
        pipe = client.pipeline(transaction=False)
        for i in todo:
            script, keys, args = calls[i]
            pipe.execute_command(*_evalsha(script.sha, keys, args))
        for i, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
            replies[i] = reply
        todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
        if not todo:
            break
        for script in {calls[i][0] for i in todo}:
            client.script_load(script.source)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


@dataclass(slots=True)
class _Pending:
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    script: Lua | None = None  # set for EVALSHA, to reload on NOSCRIPT
    options: dict[str, Any] = field(default_factory=dict)
    key: Any = None  # the key whose slot routes it on a Cluster (None: any node)


class AutoPipeline:
    """Send the commands awaited in one event-loop tick as one pipeline."""

    def __init__(
        self, client: AsyncClient, max_batch: int = MAX_BATCH, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self._client = client
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: list[_Pending] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def execute(self, *args: Any, **options: Any) -> Any:
        """One command's reply, exactly as ``client.execute_command`` would return it.
        On a Cluster the command's first argument must be its key (or its keys' first)."""
        key = args[1] if len(args) > 1 else None
        return await self._add(_Pending(args, self._future(), None, options, key))

    async def script(self, script: Lua, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        command = _evalsha(script.sha, keys, args)
        key = keys[0] if keys else None
        return await self._add(_Pending(command, self._future(), script, key=key))

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _add(self, item: _Pending) -> Any:
        self._queue.append(item)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await item.future

    def _flush(self) -> None:
        self._scheduled = False
        while self._queue and len(self._in_flight) < self._max_in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._queue and not self._scheduled:  # what queued while every slot was busy
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            replies = await self._pipeline(batch)
            missing = [
                item
                for item, reply in zip(batch, replies, strict=True)
                if isinstance(reply, NoScriptError) and item.script is not None
            ]
            if missing:
                replies = await self._reload(batch, replies, missing)
        except BaseException as exc:  # the connection failed, or we were cancelled
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for item, reply in zip(batch, replies, strict=True):
            if item.future.done():  # its caller gave up (cancelled)
                continue
            if isinstance(reply, Exception):
                item.future.set_exception(reply)
            else:
                item.future.set_result(reply)

    async def _pipeline(self, batch: Sequence[_Pending]) -> list[Any]:
        """Write the batch as one buffer and read the replies in order. Packed by hiredis:
        redis-py's asyncio client packs in Python, which cost a third of the gateway's
        CPU on a batch submission. Like the client, it tries once more on a fresh
        connection when a pooled one went stale (a Redis restart)."""
        client = self._client
        if isinstance(client, AsyncRedisCluster):
            return await self._cluster_pipeline(client, batch)
        packed = b"".join(hiredis.pack_command(item.args) for item in batch)
        try:
            return await self._exchange(client, packed, batch)
        except UNREACHABLE:
            return await self._exchange(client, packed, batch)

    async def _exchange(
        self, client: aredis.Redis, packed: bytes, batch: Sequence[_Pending]
    ) -> list[Any]:
        pool: Any = client.connection_pool  # redis-py leaves it untyped
        connection = await pool.get_connection()
        try:
            return await self._on(connection, packed, batch)
        finally:
            await pool.release(connection)

    async def _on(self, connection: Any, packed: bytes, batch: Sequence[_Pending]) -> list[Any]:
        try:
            await connection.send_packed_command(packed)
            return [await self._reply(connection, item) for item in batch]
        except BaseException:
            await connection.disconnect()  # replies may be left unread on it
            raise

    # -- on a Redis Cluster ----------------------------------------------------------------------
    async def _cluster_pipeline(
        self, cluster: AsyncRedisCluster, batch: Sequence[_Pending]
    ) -> list[Any]:
        """Each node's share of the batch as one pipeline, all at once."""
        await cluster.initialize()  # the slot map, read once (nothing to do after that)
        replies: list[Any] = [None] * len(batch)
        todo = list(range(len(batch)))
        for attempt in range(2):
            by_node: dict[str, tuple[Any, list[int]]] = {}
            for i in todo:
                key = batch[i].key
                node = cluster.get_node_from_key(key) if key is not None else None
                node = node or cluster.get_default_node()
                by_node.setdefault(node.name, (node, []))[1].append(i)
            shares = [(node, [batch[i] for i in at]) for node, at in by_node.values()]
            sent = await asyncio.gather(
                *(self._node(*share) for share in shares), return_exceptions=True
            )
            todo = []
            for (_node, at), outcome in zip(by_node.values(), sent, strict=True):
                if _unreachable(outcome) and not attempt:
                    todo += at  # once more, after the slot map is read again
                elif isinstance(outcome, BaseException):
                    for i in at:
                        replies[i] = outcome
                else:
                    for i, reply in zip(at, outcome, strict=True):
                        replies[i] = reply
            if not todo:
                break
            await cluster.nodes_manager.initialize()
        for i, reply in enumerate(replies):
            if isinstance(reply, REDIRECTED):
                replies[i] = await self._redirected(cluster, batch[i])
        return replies

    async def _node(self, node: Any, share: list[_Pending]) -> list[Any]:
        """One node's share on one of its connections (redis-py leaves them untyped)."""
        packed = b"".join(hiredis.pack_command(item.args) for item in share)
        connection = node.acquire_connection()
        try:
            return await self._on(connection, packed, share)
        finally:
            node.release(connection)

    @staticmethod
    async def _redirected(cluster: AsyncRedisCluster, item: _Pending) -> Any:
        """A command that met a moved slot, through the cluster client, which follows
        the redirection and updates its slot map."""
        try:
            return await cluster.execute_command(*item.args, **item.options)
        except ResponseError as exc:  # NOSCRIPT among them: reloaded as in a batch
            return exc

    async def _reply(self, connection: Any, item: _Pending) -> Any:
        try:
            reply = await connection.read_response()
        except ResponseError as exc:  # this command's error; the connection reads on
            return exc
        callback = self._client.response_callbacks.get(str(item.args[0]).upper())
        return callback(reply, **item.options) if callback else reply

    async def _reload(
        self, batch: list[_Pending], replies: list[Any], missing: list[_Pending]
    ) -> list[Any]:
        """Load the scripts the server did not know and send their calls again."""
        for script in {i.script for i in missing if i.script}:
            await self._client.script_load(script.source)  # its sha is the source's digest
        again = dict(zip(map(id, missing), await self._pipeline(missing), strict=True))
        return [again.get(id(item), reply) for item, reply in zip(batch, replies, strict=True)]


__all__ = ["AutoPipeline", "script_calls"]
