"""The direct path: a producer writes runs to Redis itself, as the gateway would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgspec
import redis

from sdk.broker import AsyncBroker, Broker, check_revoke
from sdk.calls import Call, Step, build_submission, build_workflow
from sdk.clients import async_client, sync_client
from sdk.config import Settings
from sdk.errors import BrokerUnavailable, InvalidRequest
from sdk.http_tasks import (
    HttpTaskSpec,
    catalog_entry,
    check_spec,
    is_python_task,
    python_task_conflict,
)
from sdk.protocol import new_id
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, Submission
from sdk.protocol.record import Fields
from sdk.runs import RunJSON, run_json
from sdk.serializers import Codec, content_type_of
from sdk.transports import PerLoop


class RedisTransport:
    def __init__(self, settings: Settings, codec: Codec) -> None:
        if not settings.redis_url:
            raise BrokerUnavailable("no redis_url configured")
        self._settings = settings
        self._codec = codec
        self._keys = Keys.from_settings(settings)
        self._limits = Limits.from_settings(settings)
        self._content_type = content_type_of(settings.serializer)
        url = settings.redis_url
        with _unavailable():  # a Cluster's client reads its slot map here
            self._broker = Broker(sync_client(url), self._keys, self._limits)
        self._abroker = PerLoop(lambda: AsyncBroker(async_client(url), self._keys, self._limits))

    @property
    def _async(self) -> AsyncBroker:
        return self._abroker.get()

    def _subs(self, calls: Sequence[Call]) -> list[Submission]:
        return [
            build_submission(
                call,
                self._codec,
                default_queue=self._settings.default_queue,
                content_type=self._content_type,
                run_id=call.options.idempotency_key,
                keys=self._keys,
            )
            for call in calls
        ]

    def _view(self, run_id: str, fields: Fields | None) -> RunJSON | None:
        return run_json(run_id, fields, self._codec) if fields else None

    def send(self, calls: Sequence[Call]) -> list[str]:
        subs = self._subs(calls)
        with _unavailable():
            self._broker.submit(subs)
        return [s.message.id for s in subs]

    def send_workflows(self, calls: Sequence[Call]) -> list[list[Step]]:
        """Each call with what follows it (a chain, a chord) as one workflow: first the
        chords they start with are opened, then every run is queued in one round trip."""
        plans = [
            build_workflow(
                call,
                self._codec,
                self._keys,
                default_queue=self._settings.default_queue,
                content_type=self._content_type,
            )
            for call in calls
        ]
        with _unavailable():
            for plan in plans:
                if plan.open is not None and not self._broker.scripts(plan.open):
                    raise InvalidRequest(f"a chord with body id {plan.steps[0].id} exists already")
            self._broker.submit([sub for plan in plans for sub in plan.submissions])
        return [plan.steps for plan in plans]

    def send_group(self, calls: Sequence[Call]) -> tuple[str, list[list[Step]]]:
        """A group's members: its plain runs in one round trip, what is composed (chains,
        chords, callbacks) as workflows in another; each member's steps, in order."""
        plain = [c for c in calls if not _has_steps(c)]
        ids = iter(self.send(plain))
        flows = iter(self.send_workflows([c for c in calls if _has_steps(c)]))
        sent = [next(flows) if _has_steps(c) else [Step(next(ids))] for c in calls]
        return new_id(), sent

    def save_group(self, group_id: str, run_ids: Sequence[str]) -> None:
        with _unavailable():
            self._broker.save_group(group_id, run_ids)

    def restore_group(self, group_id: str) -> list[str] | None:
        with _unavailable():
            return self._broker.restore_group(group_id)

    def put_http_task(self, name: str, spec: HttpTaskSpec) -> None:
        """Write the task's catalog entry, as ``PUT /tasks/{name}`` does."""
        check_spec(name, spec)
        entry = msgspec.json.encode(catalog_entry(name, spec, self._settings.default_queue))
        with _unavailable():
            if is_python_task(cast(bytes | None, self._broker.redis.hget(self._keys.tasks, name))):
                raise python_task_conflict(name)
            self._broker.redis.hset(self._keys.tasks, name, entry)

    def delete_http_task(self, name: str) -> bool:
        with _unavailable():
            raw = cast(bytes | None, self._broker.redis.hget(self._keys.tasks, name))
            if is_python_task(raw):
                raise python_task_conflict(name)
            return raw is not None and bool(self._broker.redis.hdel(self._keys.tasks, name))

    def run(self, run_id: str) -> RunJSON | None:
        with _unavailable():
            return self._view(run_id, self._broker.record(run_id))

    def runs(self, run_ids: Sequence[str]) -> list[RunJSON | None]:
        with _unavailable():
            records = self._broker.records(run_ids)
        return [self._view(i, f) for i, f in zip(run_ids, records, strict=True)]

    def wait(self, run_id: str, timeout: float) -> RunJSON | None:
        with _unavailable():
            return self._view(run_id, self._broker.wait(run_id, timeout))

    async def send_async(self, calls: Sequence[Call]) -> list[str]:
        subs = self._subs(calls)
        with _unavailable():
            await self._async.submit(subs)
        return [s.message.id for s in subs]

    async def run_async(self, run_id: str) -> RunJSON | None:
        with _unavailable():
            return self._view(run_id, await self._async.record(run_id))

    async def wait_async(self, run_id: str, timeout: float) -> RunJSON | None:
        with _unavailable():
            return self._view(run_id, await self._async.wait(run_id, timeout))

    def revoke(self, run_id: str, terminate: bool) -> None:
        with _unavailable():
            check_revoke(run_id, self._broker.revoke(run_id, self._codec, terminate))

    async def revoke_async(self, run_id: str, terminate: bool) -> None:
        with _unavailable():
            check_revoke(run_id, await self._async.revoke(run_id, self._codec, terminate))

    def close(self) -> None:
        self._broker.redis.close()


class _unavailable:
    """Turn redis-py's connection errors into BrokerUnavailable."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            raise BrokerUnavailable(f"Redis unreachable: {exc}") from exc


def _has_steps(call: Call) -> bool:
    """Whether the call is more than one run to plan (a chain, a chord); callbacks ride
    in a plain submission."""
    return bool(call.chain or call.header)
