"""A slot's own connection for its one script call per run.

A slot makes one ``step.lua`` call per run from one thread. Through the client, each
call would also pass the connection pool (a lock and a fork check), the retry wrapper and
the command-observability hooks: a third of a slot's CPU per run, measured on a no-op
task. The lane sends ``EVALSHA`` on a connection the slot owns. It never retries by
itself: after a connection error the caller decides (the consumer backs off, and the
outcome it holds is sent again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class ScriptLane:
    def __init__(self, client: redis.Redis, script: Script) -> None:
        # Any: redis-py leaves Connection untyped
        self._connection: Any = client.connection_pool.make_connection()
        self._script = script

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self._evalsha(keys, args)
        except NoScriptError:  # a restarted or flushed server: load it, then once more
            self._connection.send_command("SCRIPT", "LOAD", self._script.script)
            self._connection.read_response()  # the same sha: it is the source's digest
            return self._evalsha(keys, args)
        except (redis.ConnectionError, redis.TimeoutError):
            self._connection.disconnect()  # reconnects next call
            raise

    def _evalsha(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        # Packed by hiredis straight away: the connection's packer first copies every
        # argument through a Python generator, which cost a tenth of the slot's CPU.
        command = ("EVALSHA", self._script.sha, len(keys), *keys, *args)
        self._connection.send_packed_command([hiredis.pack_command(command)])
        return self._connection.read_response()

    def close(self) -> None:
        self._connection.disconnect()
