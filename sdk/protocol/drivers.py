"""Run planned script calls (``sdk/protocol/plans.py``) over a sync or an asyncio client.

Scripts go out as ``EVALSHA``. A server that has not seen a script (restarted, flushed)
answers NOSCRIPT; the script is loaded and the call sent once more. The asyncio driver
sends through the gateway's auto-pipeline, so concurrent callers share round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from redis.exceptions import NoScriptError

from sdk.clients import AsyncClient, SyncClient
from sdk.pipelining import AutoPipeline, script_calls
from sdk.protocol.plans import ScriptCall

R = TypeVar("R")


def evalsha(call: ScriptCall[Any]) -> tuple[Any, ...]:
    """The ``EVALSHA`` command of a call, as sent on the wire."""
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


class Scripts:
    """Runs script calls over a redis-py client (of one server or a Cluster)."""

    def __init__(self, client: SyncClient) -> None:
        self.redis = client

    def __call__(self, call: ScriptCall[R]) -> R:
        try:
            reply = self.redis.execute_command(*evalsha(call))  # type: ignore[no-untyped-call]
        except NoScriptError:
            self.redis.script_load(call.script.source)
            reply = self.redis.execute_command(*evalsha(call))  # type: ignore[no-untyped-call]
        return call.parse(reply)

    def many(self, calls: Sequence[ScriptCall[R]]) -> list[R]:
        """Every call in one round trip; a call's error is raised after all have run."""
        replies = script_calls(self.redis, [(c.script, c.keys, c.args) for c in calls])
        return [c.parse(r) for c, r in zip(calls, replies, strict=True)]


class AsyncScripts:
    """Runs script calls over a redis.asyncio client, through an auto-pipeline."""

    def __init__(self, client: AsyncClient, auto: AutoPipeline | None = None) -> None:
        self.redis = client
        self.auto = auto or AutoPipeline(client)

    async def __call__(self, call: ScriptCall[R]) -> R:
        return call.parse(await self.auto.script(call.script, call.keys, call.args))

    async def many(self, calls: Sequence[ScriptCall[R]]) -> list[R]:
        return list(await asyncio.gather(*map(self, calls)))


__all__ = ["AsyncScripts", "Scripts", "evalsha"]
