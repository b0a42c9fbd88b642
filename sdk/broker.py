"""Protocol operations for producers and readers, over a sync or an asyncio client.

Every script call is planned by ``sdk/protocol/plans.py`` and run by its drivers; what
is here is the composition: a batch, a wait, a two-step requeue.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import msgspec
import redis

from sdk import followups
from sdk import protocol as p
from sdk.clients import AsyncClient, SyncClient
from sdk.errors import Conflict, ProtocolError, RunNotFound
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts, Scripts
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, ScriptCall, Submission, Verdict
from sdk.protocol.record import Fields, is_terminal
from sdk.serializers import Codec

_json = msgspec.json.Decoder()
MISSING = Verdict("MISSING", "")  # what revoke.lua and requeue.lua answer for no record


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else None


def _ended(
    keys: Keys, limits: Limits, env: bytes | str | None, codec: Codec
) -> ScriptCall[bool] | None:
    """For a run with follow-ups, the finish call that ends it REVOKED with them should it
    never start (none if its envelope is unreadable)."""
    raw = env.encode() if isinstance(env, str) else env
    try:
        message = p.decode_envelope(raw) if raw else None
    except ProtocolError:
        return None
    if message is None or not followups.follows(message):
        return None
    return followups.revoked(keys, limits, message, codec)


def check_revoke(run_id: str, verdict: Verdict) -> None:
    """Raise for the revoke outcomes that are errors (SPEC §12: unknown 404, finished 409)."""
    if verdict.outcome == "MISSING":
        raise RunNotFound(f"no run {run_id}")
    if verdict.outcome == "FINISHED":
        raise Conflict(f"run {run_id} already finished ({verdict.state})")


def check_requeue(run_id: str, verdict: Verdict) -> None:
    """Raise for the requeue outcomes that are errors: unknown 404, not dead 409."""
    if verdict.outcome == "MISSING":
        raise RunNotFound(f"no run {run_id}")
    if verdict.outcome == "NOT_DEAD":
        raise Conflict(f"run {run_id} is {verdict.state}, not in the dead letters")


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A hash of JSON values (the task catalog, the worker table) as Python objects."""
    return {k.decode(): _json.decode(v) for k, v in raw.items()}


class Workflow(msgspec.Struct, kw_only=True):
    """A workflow submitted over ``POST /workflows``: its kind, its members' run ids (a
    group's: each member's result run), and the run whose result is its own."""

    id: str
    kind: str  # "chain", "group", "chord" or "task" (a lone signature, with its links)
    members: list[str]
    result: str | None = None  # chain: the last step; chord: the body; group: none


class Broker:
    """Synchronous protocol operations over one redis-py client."""

    def __init__(self, client: SyncClient, keys: Keys, limits: Limits | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.limits = limits or Limits()
        self.scripts = Scripts(client)
        self._listeners = threading.local()

    def submit(self, subs: Sequence[Submission]) -> list[bool]:
        """Queue runs in one round trip; False where the id already existed."""
        if len(subs) == 1:
            return [self.scripts(plans.submit(self.keys, self.limits, subs[0]))]
        plan = plans.submit_many(self.keys, self.limits, subs)
        return plan.merge(self.scripts.many(plan.calls))

    def record(self, run_id: str) -> Fields | None:
        fields = cast(Fields, self.redis.hgetall(self.keys.run(run_id)))
        return fields or None

    def records(self, run_ids: Sequence[str]) -> list[Fields | None]:
        """Many records in one round trip (``GroupResult``), 1,000 a pipeline."""
        found: list[Fields | None] = []
        for start in range(0, len(run_ids), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for run_id in run_ids[start : start + 1000]:
                pipe.hgetall(self.keys.run(run_id))
            found += [fields or None for fields in pipe.execute()]
        return found

    def save_group(self, group_id: str, run_ids: Sequence[str]) -> None:
        """Keep a group's run ids, as long as results are kept (``GroupResult.save``)."""
        ids = msgspec.json.encode(list(run_ids))
        self.redis.set(self.keys.group(group_id), ids, ex=self.limits.result_ttl)

    def restore_group(self, group_id: str) -> list[str] | None:
        raw = self.redis.get(self.keys.group(group_id))
        return None if raw is None else msgspec.json.decode(cast(bytes, raw), type=list[str])

    def wait(self, run_id: str, timeout: float) -> Fields | None:
        """The run's record once terminal, or as it is when ``timeout`` runs out.

        Woken by the finish script's PUBLISH; subscribing before the re-check closes
        the window where the run finishes between the two.
        """
        fields = self.record(run_id)
        if fields is None or is_terminal(fields) or timeout <= 0:
            return fields
        pubsub, channel = self._listener(), self.keys.done_channel(run_id)
        try:
            pubsub.subscribe(channel)
            deadline = time.monotonic() + timeout
            while not is_terminal(fields := self.record(run_id)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                pubsub.get_message(timeout=remaining)  # a stale message only re-reads
            return fields
        finally:
            try:
                pubsub.unsubscribe(channel)
            except redis.RedisError:
                pubsub.close()
                self._listeners.pubsub = None

    def _listener(self) -> Any:
        """This thread's subscriber connection, kept from one wait to the next (a new
        one per wait cost a TCP connect and handshake per result)."""
        held = getattr(self._listeners, "pubsub", None)
        if held is None or held[0] != os.getpid():  # none yet, or inherited over a fork
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            self._listeners.pubsub = held = (os.getpid(), pubsub)
        return held[1]

    def tasks(self) -> dict[str, Any]:
        return decode_hash(cast(Fields, self.redis.hgetall(self.keys.tasks)))

    def update_state(self, message: p.Message, state: str, meta: bytes) -> None:
        """A custom state (``PROGRESS``) with JSON ``meta``, shown on the run and as an event."""
        self.scripts(plans.progress(self.keys, self.limits, message, state, meta))

    def revoke(self, run_id: str, codec: Codec, terminate: bool = False) -> Verdict:
        """Revoke a run (if it never starts, with what follows it: ``codec`` builds its
        errbacks); returns the revoke script's outcome and the state it found."""
        queue, env = self.redis.hmget(self.keys.run(run_id), p.F_QUEUE, p.F_ENV)
        ended = _ended(self.keys, self.limits, env, codec)
        call = plans.revoke(self.keys, self.limits, run_id, _text(queue) or "", terminate, ended)
        return self.scripts(call)

    def requeue(self, run_id: str) -> Verdict:
        """Put a dead-lettered run back on its queue (see requeue.lua)."""
        queue = self._queue_of(run_id)
        if queue is None:
            return MISSING
        return self.scripts(plans.requeue(self.keys, self.limits, run_id, queue))

    def _queue_of(self, run_id: str) -> str | None:
        """The run's queue, read first: its script is given the queue's keys."""
        return _text(self.redis.hget(self.keys.run(run_id), p.F_QUEUE))


class AsyncBroker:
    """The same operations over a redis.asyncio client (gateway, async SDK)."""

    def __init__(self, client: AsyncClient, keys: Keys, limits: Limits | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.limits = limits or Limits()
        self.scripts = AsyncScripts(client)
        self.auto = self.scripts.auto

    async def submit(self, subs: Sequence[Submission]) -> list[bool]:
        """Queue runs; concurrent callers share round trips (see sdk/pipelining.py)."""
        if len(subs) == 1:
            return [await self.scripts(plans.submit(self.keys, self.limits, subs[0]))]
        plan = plans.submit_many(self.keys, self.limits, subs)
        return plan.merge(await self.scripts.many(plan.calls))

    async def record(self, run_id: str) -> Fields | None:
        fields = cast(Fields, await self.auto.execute("HGETALL", self.keys.run(run_id)))
        return fields or None

    async def save_workflow(self, workflow: Workflow) -> None:
        """Keep what ``GET /runs/{id}`` shows of a workflow, as long as results."""
        raw = msgspec.json.encode(workflow)
        await self.auto.execute(
            "SET", self.keys.workflow(workflow.id), raw, "EX", self.limits.result_ttl
        )

    async def workflow(self, workflow_id: str) -> Workflow | None:
        raw = await self.auto.execute("GET", self.keys.workflow(workflow_id))
        return None if raw is None else msgspec.json.decode(raw, type=Workflow)

    async def wait(self, run_id: str, timeout: float) -> Fields | None:
        """As Broker.wait, for one waiter; the gateway shares one subscription instead."""
        fields = await self.record(run_id)
        if fields is None or is_terminal(fields) or timeout <= 0:
            return fields
        # On a Cluster the subscription needs the slot map, which the read above has read.
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.done_channel(run_id))
            deadline = time.monotonic() + timeout
            while not is_terminal(fields := await self.record(run_id)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await pubsub.get_message(timeout=remaining)
            return fields
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def tasks(self) -> dict[str, Any]:
        return decode_hash(cast(Fields, await self.redis.hgetall(self.keys.tasks)))

    async def revoke(self, run_id: str, codec: Codec, terminate: bool = False) -> Verdict:
        queue, env = await self.redis.hmget(self.keys.run(run_id), [p.F_QUEUE, p.F_ENV])
        ended = _ended(self.keys, self.limits, env, codec)
        call = plans.revoke(self.keys, self.limits, run_id, _text(queue) or "", terminate, ended)
        return await self.scripts(call)

    async def requeue(self, run_id: str) -> Verdict:
        """Put a dead-lettered run back on its queue (see requeue.lua)."""
        queue = await self._queue_of(run_id)
        if queue is None:
            return MISSING
        return await self.scripts(plans.requeue(self.keys, self.limits, run_id, queue))

    async def _queue_of(self, run_id: str) -> str | None:
        return _text(await self.redis.hget(self.keys.run(run_id), p.F_QUEUE))
