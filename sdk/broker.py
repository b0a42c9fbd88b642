"""Redis operations of the wire protocol, for producers and readers (sync and async).

Each operation is planned once by a pure function (keys and arguments of a script call)
and executed by a thin sync or async driver, so the two never drift apart.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import redis
import redis.asyncio as aredis
from redis.commands.core import AsyncScript, Script

from sdk import protocol as p
from sdk import scripts, states
from sdk.config import Settings
from sdk.errors import Conflict, RunNotFound
from sdk.keys import Keys
from sdk.pipelining import AutoPipeline, script_calls

Fields = dict[bytes, bytes]
_TERMINAL = {s.encode() for s in states.TERMINAL}
_json = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes that bound what Redis keeps."""

    history: int = 10_000  # runs listed by GET /runs
    events: int = 100_000  # entries kept in the events stream (approximate)
    result_ttl: int = 86_400  # seconds a finished run's record is kept

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(history=settings.history_size, result_ttl=settings.result_expires)


@dataclass(frozen=True, slots=True)
class Submission:
    """One run to submit: its envelope and its encoded arguments."""

    message: p.Message
    body: bytes


def plan_submit(keys: Keys, limits: Limits, sub: Submission) -> tuple[list[str], list[Any]]:
    m = sub.message
    env = p.encode_envelope(m)
    delayed = m.eta is not None and m.eta > p.now_ms()
    target = keys.delayed(m.queue) if delayed else keys.stream(m.queue, m.priority)
    state = states.SCHEDULED if delayed else states.PENDING
    args: list[Any] = [
        "delayed" if delayed else "stream",
        m.eta or 0,
        m.id,
        env,
        sub.body,
        m.created_at,
        limits.history,
        limits.events,
        m.queue,
        m.task,
        state,
    ]
    for name, value in (
        (p.F_PARENT, m.parent_id),
        (p.F_ROOT, m.root_id),
        (p.F_CALLBACK, m.callback_url),
    ):
        if value:
            args += [name, value]
    return [target, keys.run(m.id), keys.runs, keys.events, keys.queues], args


SUBMIT_CHUNK = 500  # runs per submit_many.lua call: a bounded script, a bounded reply


def plan_submit_many(
    keys: Keys, limits: Limits, subs: Sequence[Submission]
) -> list[tuple[list[str], list[Any]]]:
    """submit_many.lua calls for ``subs``, ``SUBMIT_CHUNK`` runs each."""
    calls = []
    for start in range(0, len(subs), SUBMIT_CHUNK):
        all_keys: list[str] = []
        all_args: list[Any] = []
        for sub in subs[start : start + SUBMIT_CHUNK]:
            k, a = plan_submit(keys, limits, sub)
            all_keys += k
            all_args += [len(a), *a]
        calls.append((all_keys, all_args))
    return calls


def plan_revoke(
    keys: Keys, limits: Limits, run_id: str, terminate: bool
) -> tuple[list[str], list[Any]]:
    now = p.now_ms()
    args: list[Any] = [
        run_id,
        now,
        now + limits.result_ttl * 1000,
        limits.events,
        keys.done_channel(run_id),
        "1" if terminate else "0",
        keys.prefix,
        limits.result_ttl,
    ]
    return [keys.run(run_id), keys.revoked, keys.events, keys.control], args


def _outcome_and_state(reply: Any) -> tuple[str, str]:
    """A script's {outcome, state} reply as text."""
    outcome, state = reply
    return outcome.decode(), state.decode()


def check_revoke(run_id: str, outcome: str, state: str) -> None:
    """Raise for the revoke outcomes that are errors (SPEC §12: unknown 404, finished 409)."""
    if outcome == "MISSING":
        raise RunNotFound(f"no run {run_id}")
    if outcome == "FINISHED":
        raise Conflict(f"run {run_id} already finished ({state})")


def check_requeue(run_id: str, outcome: str, state: str) -> None:
    """Raise for the requeue outcomes that are errors: unknown 404, not dead 409."""
    if outcome == "MISSING":
        raise RunNotFound(f"no run {run_id}")
    if outcome == "NOT_DEAD":
        raise Conflict(f"run {run_id} is {state}, not in the dead letters")


def plan_requeue(keys: Keys, limits: Limits, run_id: str) -> tuple[list[str], list[Any]]:
    return [keys.run(run_id), keys.events], [run_id, keys.prefix, limits.events]


def is_terminal(fields: Fields | None) -> bool:
    return fields is not None and fields.get(b"state") in _TERMINAL


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A hash of JSON values (the task catalog, the worker table) as Python objects."""
    return {k.decode(): _json.decode(v) for k, v in raw.items()}


class Broker:
    """Synchronous protocol operations over one redis-py client."""

    def __init__(self, client: redis.Redis, keys: Keys, limits: Limits | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.limits = limits or Limits()
        self.scripts: dict[str, Script] = {
            n: client.register_script(scripts.source(n)) for n in scripts.NAMES
        }
        self._listeners = threading.local()

    def submit(self, subs: Sequence[Submission]) -> list[bool]:
        """Queue runs in one round trip; False where the id already existed."""
        if len(subs) == 1:
            k, a = plan_submit(self.keys, self.limits, subs[0])
            return [bool(self.scripts["submit"](k, a))]
        calls = plan_submit_many(self.keys, self.limits, subs)
        replies = script_calls(self.redis, self.scripts["submit_many"], calls)
        return [bool(x) for chunk in replies for x in chunk]

    def run(self, run_id: str) -> Fields | None:
        fields = cast(Fields, self.redis.hgetall(self.keys.run(run_id)))
        return fields or None

    def wait(self, run_id: str, timeout: float) -> Fields | None:
        """The run's record once terminal, or as it is when ``timeout`` runs out.

        Woken by the finish script's PUBLISH; subscribing before the re-check closes
        the window where the run finishes between the two.
        """
        fields = self.run(run_id)
        if fields is None or is_terminal(fields) or timeout <= 0:
            return fields
        pubsub, channel = self._listener(), self.keys.done_channel(run_id)
        try:
            pubsub.subscribe(channel)
            deadline = time.monotonic() + timeout
            while not is_terminal(fields := self.run(run_id)):
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
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.run(message.id), mapping={p.F_STATE: state, p.F_META: meta})
        pipe.xadd(
            self.keys.events,
            {
                "kind": "run",
                "id": message.id,
                "state": state,
                "task": message.task,
                "queue": message.queue,
            },
            maxlen=self.limits.events,
            approximate=True,
        )
        pipe.execute()

    def revoke(self, run_id: str, terminate: bool = False) -> tuple[str, str]:
        """Revoke a run; returns the revoke script's outcome and the state it found."""
        k, a = plan_revoke(self.keys, self.limits, run_id, terminate)
        return _outcome_and_state(self.scripts["revoke"](k, a))

    def requeue(self, run_id: str) -> tuple[str, str]:
        """Put a dead-lettered run back on its queue (see requeue.lua)."""
        k, a = plan_requeue(self.keys, self.limits, run_id)
        return _outcome_and_state(self.scripts["requeue"](k, a))


class AsyncBroker:
    """The same operations over a redis.asyncio client (gateway, async SDK)."""

    def __init__(self, client: aredis.Redis, keys: Keys, limits: Limits | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.limits = limits or Limits()
        self.scripts: dict[str, AsyncScript] = {
            n: client.register_script(scripts.source(n)) for n in scripts.NAMES
        }
        self.auto = AutoPipeline(client)

    async def submit(self, subs: Sequence[Submission]) -> list[bool]:
        """Queue runs; concurrent callers share round trips (see sdk/pipelining.py)."""
        if len(subs) == 1:
            k, a = plan_submit(self.keys, self.limits, subs[0])
            return [bool(await self.auto.script(self.scripts["submit"], k, a))]
        script = self.scripts["submit_many"]
        calls = plan_submit_many(self.keys, self.limits, subs)
        replies = await asyncio.gather(*(self.auto.script(script, k, a) for k, a in calls))
        return [bool(x) for chunk in replies for x in chunk]

    async def run(self, run_id: str) -> Fields | None:
        fields = cast(Fields, await self.auto.execute("HGETALL", self.keys.run(run_id)))
        return fields or None

    async def wait(self, run_id: str, timeout: float) -> Fields | None:
        """As Broker.wait, for one waiter; the gateway shares one subscription instead."""
        fields = await self.run(run_id)
        if fields is None or is_terminal(fields) or timeout <= 0:
            return fields
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.done_channel(run_id))
            deadline = time.monotonic() + timeout
            while not is_terminal(fields := await self.run(run_id)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await pubsub.get_message(timeout=remaining)
            return fields
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def tasks(self) -> dict[str, Any]:
        return decode_hash(cast(Fields, await self.redis.hgetall(self.keys.tasks)))

    async def revoke(self, run_id: str, terminate: bool = False) -> tuple[str, str]:
        k, a = plan_revoke(self.keys, self.limits, run_id, terminate)
        return _outcome_and_state(await self.scripts["revoke"](k, a))

    async def requeue(self, run_id: str) -> tuple[str, str]:
        """Put a dead-lettered run back on its queue (see requeue.lua)."""
        k, a = plan_requeue(self.keys, self.limits, run_id)
        return _outcome_and_state(await self.scripts["requeue"](k, a))
