"""The asyncio consumer's script calls, pipelined on one connection: what ``ScriptLane``
(``executors/lane.py``) is to a sync slot.

Every slot's ``EVALSHA`` of a loop tick is written at once; one reader task parses the
replies as they arrive and hands each to the slot that waits for it, in order. Through
redis-py's asyncio client each reply cost its own ``read_response`` with its own timeout
context, a quarter of the worker's CPU per run on a no-op task; here a read of the
socket resolves every reply it holds. The connection is made (TLS, AUTH, SELECT) by
redis-py; only the hot path is ours. After a connection error every waiting call fails
with ``redis.ConnectionError`` and the next call connects again: the consumer decides
what to retry.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, TypeVar

import hiredis
import redis
import redis.asyncio as aredis

from sdk.protocol.drivers import evalsha
from sdk.protocol.plans import ScriptCall

R = TypeVar("R")
_READ = 1 << 16
# Calls written at once at most. Slots woken together would otherwise all run before the
# write, and Redis would wait for the loop, then the loop for Redis; in smaller writes
# Redis starts on the first calls while the loop prepares the next ones.
FLUSH_AT = 4


class AsyncLane:
    def __init__(self, client: aredis.Redis) -> None:
        self._client = client
        self._connection: Any = None  # redis-py leaves Connection untyped
        self._connecting: asyncio.Future[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], ScriptCall[Any]]] = deque()
        self._out: list[bytes] = []
        self._scheduled = False

    async def __call__(self, call: ScriptCall[R]) -> R:
        if self._writer is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._send(future, call)
        return call.parse(await future)

    def _send(self, future: asyncio.Future[Any], call: ScriptCall[Any]) -> None:
        self._waiting.append((future, call))
        self._out.append(hiredis.pack_command(evalsha(call)))
        if len(self._out) >= FLUSH_AT:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush(self) -> None:
        if self._out and self._writer is not None:
            self._writer.write(b"".join(self._out))
        self._out.clear()

    def _flush_soon(self) -> None:
        self._scheduled = False
        self._flush()

    async def _connect(self) -> None:
        """One connection for every caller; the first caller makes it, the others wait."""
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        self._connecting = asyncio.get_running_loop().create_future()
        try:
            pool: Any = self._client.connection_pool  # redis-py leaves it untyped
            connection = pool.make_connection()
            await connection.connect()
            self._connection = connection
            self._writer = connection._writer
            self._reading = asyncio.create_task(self._read(connection._reader))
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(_as_connection_error(exc))
            raise
        finally:
            connecting, self._connecting = self._connecting, None
            if connecting.done() and not connecting.cancelled():
                connecting.exception()  # retrieved: no "never retrieved" warning

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader()
        try:
            while data := await reader.read(_READ):
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    self._deliver(reply)
            raise redis.ConnectionError("Redis closed the connection")
        except Exception as exc:
            self._fail(_as_connection_error(exc))

    def _deliver(self, reply: Any) -> None:
        future, call = self._waiting.popleft()
        if future.done():  # its caller gave up
            return
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            if text.startswith("NOSCRIPT"):  # a restarted or flushed server
                self._reload(future, call)
                return
            future.set_exception(redis.ResponseError(text))
            return
        future.set_result(reply)

    def _reload(self, future: asyncio.Future[Any], call: ScriptCall[Any]) -> None:
        """Load the script, then send the call again (its sha is the source's digest)."""
        loaded: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((loaded, call))
        load: tuple[Any, ...] = ("SCRIPT", "LOAD", call.script.source)
        self._out.append(hiredis.pack_command(load))
        self._send(future, call)

    def _fail(self, exc: BaseException) -> None:
        """The connection is gone: fail every waiting call; the next one reconnects."""
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(exc)
        if self._writer is not None:
            self._writer.close()
        self._writer, self._out, self._scheduled = None, [], False
        if self._connection is not None:
            self._connection._writer = self._connection._reader = None  # ours to close
            self._connection = None

    async def close(self) -> None:
        reading = self._reading
        self._fail(redis.ConnectionError("the lane was closed"))
        if reading is not None:
            reading.cancel()


def _as_connection_error(exc: BaseException) -> BaseException:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) or not isinstance(
        exc, Exception
    ):
        return exc
    return redis.ConnectionError(str(exc) or type(exc).__name__)


__all__ = ["AsyncLane"]
