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
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.exceptions import NoScriptError, ResponseError

from sdk.protocol.lua import Lua

MAX_BATCH = 512  # commands per pipeline
MAX_IN_FLIGHT = 2  # pipelines under way at once; more commands wait for the next tick


def _evalsha(sha: str, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    return ("EVALSHA", sha, len(keys), *keys, *args)


def script_calls(
    client: redis.Redis, calls: Sequence[tuple[Lua, Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """Each ``(script, keys, args)`` call in one round trip; replies in order.
    A call's error is raised after the whole batch has run."""
    todo = list(range(len(calls)))
    replies: list[Any] = [None] * len(calls)
    for _ in range(2):  # the second pass only after NOSCRIPT
        pipe = client.pipeline(transaction=False)
        for i in todo:
            script, keys, args = calls[i]
            pipe.execute_command(*_evalsha(script.sha, keys, args))  # type: ignore[no-untyped-call]
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


class AutoPipeline:
    """Send the commands awaited in one event-loop tick as one pipeline."""

    def __init__(
        self, client: aredis.Redis, max_batch: int = MAX_BATCH, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self._client = client
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: list[_Pending] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def execute(self, *args: Any, **options: Any) -> Any:
        """One command's reply, exactly as ``client.execute_command`` would return it."""
        return await self._add(_Pending(args, self._future(), None, options))

    async def script(self, script: Lua, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await self._add(_Pending(_evalsha(script.sha, keys, args), self._future(), script))

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
        packed = b"".join(hiredis.pack_command(item.args) for item in batch)
        try:
            return await self._exchange(packed, batch)
        except (redis.ConnectionError, redis.TimeoutError):
            return await self._exchange(packed, batch)

    async def _exchange(self, packed: bytes, batch: Sequence[_Pending]) -> list[Any]:
        pool: Any = self._client.connection_pool  # redis-py leaves it untyped
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed)
            return [await self._reply(connection, item) for item in batch]
        except BaseException:
            await connection.disconnect()  # replies may be left unread on it
            raise
        finally:
            await pool.release(connection)

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
