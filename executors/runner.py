"""Execute one run: decode its arguments, call the task, turn the outcome into fields."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sdk import protocol as p
from sdk import states
from sdk.app import App
from sdk.context import Request, current_request
from sdk.errors import CeleriacError, SerializationError, TaskNotFound
from sdk.exceptions_wire import describe
from sdk.serializers import Codec

log = logging.getLogger("celeriac.runner")


@dataclass
class Outcome:
    """What the finish script stores: a terminal state and the record fields to set."""

    state: str
    fields: dict[str, Any] = field(default_factory=dict)
    runtime_ms: int | None = None


class Runner:
    """Runs messages against an App's tasks. Knows nothing about Redis or pools."""

    def __init__(self, app: App, codec: Codec, worker_id: str) -> None:
        self.app = app
        self.codec = codec
        self.worker_id = worker_id

    def run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = self._run(message, body, attempts)
        except CeleriacError as exc:  # the run could not even be called
            outcome = self._failure(exc, message)
        outcome.runtime_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    def _run(self, message: p.Message, body: bytes, attempts: int) -> Outcome:
        task = self.app.tasks.get(message.task)
        if task is None:
            raise TaskNotFound(f"task {message.task!r} is not registered on this worker")
        payload = self.codec.decode(body, message.content_type, message.signature)
        try:
            args = tuple(payload.get("args") or ())
            kwargs = dict(payload.get("kwargs") or {})
        except (AttributeError, TypeError, ValueError) as exc:
            raise SerializationError(f"body is not {{'args', 'kwargs'}}: {exc}") from exc
        request = Request(
            id=message.id,
            task=message.task,
            args=args,
            kwargs=kwargs,
            retries=message.retries,
            delivery_count=attempts,
            queue=message.queue,
            priority=message.priority,
            worker=self.worker_id,
            parent_id=message.parent_id,
            root_id=message.root_id,
            eta=message.eta,
            expires=message.expires,
        )
        token = current_request.set(request)
        try:
            value = task(*args, **kwargs)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        except Exception as exc:
            task.on_failure(exc, message.id, args, kwargs, describe(exc)["traceback"])
            return self._failure(exc, message)
        finally:
            current_request.reset(token)
        outcome = self._success(value, message)
        if outcome.state == states.SUCCESS:
            task.on_success(value, message.id, args, kwargs)
        return outcome

    def _success(self, value: Any, message: p.Message) -> Outcome:
        if message.ignore_result:
            return Outcome(states.SUCCESS)
        try:
            data, sig = self.codec.encode(value, message.content_type)
        except CeleriacError as exc:
            return self._failure(exc, message)
        fields: dict[str, Any] = {p.F_RESULT: data, p.F_RESULT_CT: message.content_type}
        if sig is not None:
            fields[p.F_RESULT_SIG] = sig
        return Outcome(states.SUCCESS, fields)

    def _failure(self, exc: BaseException, message: p.Message) -> Outcome:
        error = describe(exc)
        log.info(
            "run %s (%s) failed: %s: %s", message.id, message.task, error["type"], error["message"]
        )
        fields: dict[str, Any] = {p.F_ERROR: self.codec.encode(error, "json")[0]}
        if self.codec.signer is not None:  # the exact exception, for SDK callers that can trust it
            try:
                data, sig = self.codec.encode(exc, "pickle")
                fields[p.F_EXC], fields[p.F_EXC_SIG] = data, sig
            except CeleriacError:
                pass
        return Outcome(states.FAILURE, fields)


async def _await(value: Any) -> Any:
    return await value
