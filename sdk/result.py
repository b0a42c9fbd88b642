"""AsyncResult: a handle on a run, answered by the transport (Redis or the gateway)."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sdk import states
from sdk.errors import Conflict, ResultTimeout, RunNotFound, TaskError, TaskExpired, TaskRevoked
from sdk.exceptions_wire import rebuild
from sdk.runs import RunJSON

if TYPE_CHECKING:
    from sdk.app import App

_LONG_POLL = 60.0  # one wait() call at most this long; get() loops for longer timeouts


class AsyncResult:
    """The outcome of one run. State is read fresh on each access, as in Celery."""

    def __init__(
        self, run_id: str, app: App, parent: AsyncResult | GroupResult | None = None
    ) -> None:
        self.id = run_id
        self.app = app
        self.parent = parent  # the run before it in a chain; a chord body's header

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- reading ----------------------------------------------------------------------------
    def info(self) -> RunJSON | None:
        """The run's full record (the JSON of GET /runs/{id}), or None if unknown."""
        return self.app.transport.run(self.id)

    @property
    def state(self) -> str:
        run = self.info()
        return run["state"] if run else states.PENDING

    status = state

    def ready(self) -> bool:
        return self.state in states.TERMINAL

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The value when successful, the exception when failed, else None."""
        run = self.info()
        if run is None or run["state"] not in states.TERMINAL:
            return None
        return self._outcome(run, propagate=False)

    @property
    def traceback(self) -> str | None:
        error = (self.info() or {}).get("error")
        return error.get("traceback") if error else None

    # -- acting -----------------------------------------------------------------------------
    def revoke(self, terminate: bool = False) -> None:
        """A queued run never starts; with ``terminate`` a running one is stopped. The
        result of a chain or a chord also revokes the runs before it (its ``parent``s)
        that have not finished, and those not submitted yet never start."""
        if self.parent is None:
            self.app.transport.revoke(self.id, terminate)
            return
        for run in [self, *_before(self)]:
            _quietly(run, terminate)

    async def revoke_async(self, terminate: bool = False) -> None:
        await self.app.transport.revoke_async(self.id, terminate)

    # -- waiting ----------------------------------------------------------------------------
    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Wait for the outcome; re-raise a failure as its original type where possible."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _LONG_POLL if deadline is None else deadline - time.monotonic()
            run = self.app.transport.wait(self.id, min(max(remaining, 0), _LONG_POLL))
            if run is not None and run["state"] in states.TERMINAL:
                return self._outcome(run, propagate)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"run {self.id} not finished after {timeout}s")

    async def get_async(self, timeout: float | None = None, propagate: bool = True) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _LONG_POLL if deadline is None else deadline - time.monotonic()
            run = await self.app.transport.wait_async(self.id, min(max(remaining, 0), _LONG_POLL))
            if run is not None and run["state"] in states.TERMINAL:
                return self._outcome(run, propagate)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"run {self.id} not finished after {timeout}s")

    def _outcome(self, run: RunJSON, propagate: bool) -> Any:
        state = run["state"]
        if state == states.SUCCESS:
            encoded = run.get("result_encoded")
            if encoded:
                return self.app.codec.decode(
                    base64.b64decode(encoded["data"]),
                    encoded["content_type"],
                    encoded.get("signature"),
                )
            return run["result"]
        exc = _failure(run, self.app)
        if propagate:
            raise exc
        return exc


def _failure(run: RunJSON, app: App) -> BaseException:
    state, error = run["state"], run.get("error")
    if state == states.FAILURE and error:
        return rebuild(error, app.codec)
    message = (error or {}).get("message", state.lower())
    if state == states.REVOKED:
        return TaskRevoked("Revoked", message)
    if state == states.EXPIRED:
        return TaskExpired("Expired", message)
    return TaskError(state.title(), message, (error or {}).get("traceback"))


class EagerResult(AsyncResult):
    """The outcome of a run executed inline (``task_always_eager``)."""

    def __init__(self, run_id: str, app: App, value: Any, exc: BaseException | None) -> None:
        super().__init__(run_id, app)
        self._value = value
        self._exc = exc

    def info(self) -> RunJSON | None:
        failed = self._exc is not None
        return {
            "id": self.id,
            "state": states.FAILURE if failed else states.SUCCESS,
            "result": None if failed else self._value,
        }

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        if self._exc is None:
            return self._value
        if propagate:
            raise self._exc
        return self._exc

    async def get_async(self, timeout: float | None = None, propagate: bool = True) -> Any:
        return self.get(timeout, propagate)

    @property
    def result(self) -> Any:
        return self._exc if self._exc is not None else self._value


class GroupResult:
    """The results of a group's runs, in the group's order (Celery's ``GroupResult``)."""

    def __init__(
        self,
        group_id: str,
        results: list[AsyncResult],
        app: App,
        parent: AsyncResult | None = None,
    ) -> None:
        self.id = group_id
        self.results = results
        self.app = app
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} of {len(self.results)}>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        """How many of its runs succeeded (as Celery counts)."""
        return sum(r.successful() for r in self.results)

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Every run's result, in order; ``timeout`` bounds the whole wait. The records
        are read many to a round trip; the wait is on one unfinished run at a time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values: list[Any] = [None] * len(self.results)
        pending = []
        for i, r in enumerate(self.results):
            if isinstance(r, EagerResult):  # ran here (task_always_eager): nothing to read
                values[i] = r.get(propagate=propagate)
            else:
                pending.append(i)
        while pending:
            runs = self.app.transport.runs([self.results[i].id for i in pending])
            left = []
            for i, run in zip(pending, runs, strict=True):
                if run is not None and run["state"] in states.TERMINAL:
                    values[i] = self.results[i]._outcome(run, propagate)
                else:
                    left.append(i)
            pending = left
            if pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ResultTimeout(f"group {self.id}: {len(pending)} runs not finished")
                self.results[pending[0]].get(timeout=remaining, propagate=False)
        return values

    join = get

    async def get_async(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for r in self.results:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(await r.get_async(timeout=left, propagate=propagate))
        return values

    def revoke(self, terminate: bool = False) -> None:
        """Revoke every run of the group that has not finished (and the runs before it)."""
        for run in [*self.results, *_before(self)]:
            _quietly(run, terminate)

    def save(self) -> GroupResult:
        """Keep its run ids in Redis (as long as results) for ``GroupResult.restore``."""
        self.app.transport.save_group(self.id, [r.id for r in self.results])
        return self

    @classmethod
    def restore(cls, group_id: str, app: App) -> GroupResult | None:
        ids = app.transport.restore_group(group_id)
        return None if ids is None else cls(group_id, [AsyncResult(i, app) for i in ids], app)


def _before(result: AsyncResult | GroupResult) -> list[AsyncResult]:
    """The runs before ``result`` in its workflow, walking ``parent``."""
    runs: list[AsyncResult] = []
    parent = result.parent
    while parent is not None:
        runs += parent.results if isinstance(parent, GroupResult) else [parent]
        parent = parent.parent
    return runs


def _quietly(run: AsyncResult, terminate: bool) -> None:
    """Revoke ``run`` unless it has finished (a run not submitted yet is marked, so it
    never starts)."""
    with contextlib.suppress(Conflict, RunNotFound):
        run.app.transport.revoke(run.id, terminate)
