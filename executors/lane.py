"""A slot's own connection for its one script call per run.

A slot makes one ``step.lua`` call per run from one thread. Through the client, each
call would also pass the connection pool (a lock and a fork check), the retry wrapper and
the command-observability hooks: a third of a slot's CPU per run, measured on a no-op
task. The lane sends ``EVALSHA`` on a connection the slot owns. It never retries by
itself: after a connection error the caller decides (the consumer backs off, and the
outcome it holds is sent again).
"""

from __future__ import annotations

from typing import Any, TypeVar

import hiredis
import redis
from redis.exceptions import NoScriptError

from sdk.protocol.drivers import evalsha
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
