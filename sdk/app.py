"""App: the registry of tasks and the producer's entry point (Celery's ``Celery``)."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar, overload

from sdk.builtins import builtin
from sdk.calls import Call, SendOptions
from sdk.celery_settings import translate
from sdk.config import FIELDS, Settings, settings_from_object
from sdk.context import Request, current_request
from sdk.current import app_made
from sdk.errors import ConfigurationError, DuplicateTask, TaskNotFound
from sdk.http_tasks import HttpTaskSpec
from sdk.http_tasks import Target as HttpTarget
from sdk.middleware import Middleware
from sdk.protocol import new_id
from sdk.result import AsyncResult, EagerResult
from sdk.schedules import PeriodicTask, Schedule, Signal, periodic_task
from sdk.serializers import Codec
from sdk.signing import Signer
from sdk.task import Task
from sdk.transports import Transport

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Tasks are registered on an App; runs are submitted through its transport.

    ``App("proj", gateway_url=...)`` submits over HTTP; with ``redis_url=...`` (or
    ``CELERIAC_REDIS_URL``) it writes to Redis directly.
    """

    def __init__(
        self,
        main: str = "app",
        *,
        middleware: Sequence[Middleware] = (),
        set_as_current: bool = True,
        **settings: Any,
    ) -> None:
        self.main = main
        #: Run by executors around every run of this app's tasks, after their own
        #: (sdk/middleware.py).
        self.middleware: list[Middleware] = list(middleware)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._code_settings: dict[str, Any] = dict(settings)
        self.conf = self._resolve()
        self._transport: Transport | None = None
        self._codec: Codec | None = None
        self.periodic_tasks: list[PeriodicTask] = []  # static schedules (sdk/schedules.py)
        self.on_after_configure = Signal()
        self.include: list[str] = []  # task modules the worker imports (Celery's include=)
        self._discover: list[tuple[Iterable[str] | Callable[[], Iterable[str]], str]] = []
        app_made(self, set_as_current)

    def __repr__(self) -> str:
        return f"<App {self.main}: {len(self.tasks)} tasks>"

    # -- configuration ------------------------------------------------------------------------
    def autodiscover_tasks(
        self,
        packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
        related_name: str = "tasks",
        force: bool = False,
    ) -> None:
        """Celery's ``autodiscover_tasks``: each package's ``tasks`` module (``related_name``)
        is imported with the ``include=`` modules, or now with ``force``; a package without
        one is skipped. ``packages`` may be a callable, read when the modules are imported."""
        if packages is None:  # Celery reads Django's installed apps here: not built yet
            raise ConfigurationError(
                "autodiscover_tasks() needs the packages: finding Django's installed apps "
                "is not built yet (docs/migrating-from-celery.md)"
            )
        self._discover.append((packages, related_name))
        if force:
            self.import_included()

    def _discovered(self) -> list[str]:
        """The task modules of the packages given to ``autodiscover_tasks`` that exist."""
        found = []
        for packages, related_name in self._discover:
            for package in packages() if callable(packages) else packages:
                module = f"{package}.{related_name}"
                try:
                    exists = importlib.util.find_spec(module) is not None
                except ImportError as exc:  # the package itself is missing
                    raise ConfigurationError(f"autodiscover_tasks: {package!r}: {exc}") from exc
                if exists:
                    found.append(module)
        return found

    def import_included(self) -> None:
        """Import the task modules named by ``include=`` and found by ``autodiscover_tasks``
        (the worker does, once the App's own module is loaded, so a task module may
        import the App)."""
        for module in [*self.include, *self.conf.extra.get("include", ()), *self._discovered()]:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigurationError(f"include={module!r}: cannot import it: {exc}") from exc

    def _resolve(self) -> Settings:
        return Settings().updated(self._code_settings).with_env()

    def config_from_object(
        self, obj: object | str, *, namespace: str | None = None, silent: bool = False
    ) -> None:
        """Celery's ``config_from_object``: settings from a module (or ``"module"``,
        ``"module:attr"``), an object or a mapping, by Celery's names or Celeriac's; with
        ``namespace="CELERY"``, only ``CELERY_``-prefixed names, as Django projects keep
        them. ``silent``: a module that cannot be imported is no error."""
        try:
            raw = settings_from_object(obj)
        except ConfigurationError:
            if silent:
                return
            raise
        self._code_settings.update(translate(raw, FIELDS, namespace))
        self.conf = self._resolve()
        self.close()

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            key = self.conf.signing_key
            self._codec = Codec(Signer(key) if key else None)
        return self._codec

    @property
    def transport(self) -> Transport:
        """Built on first use from the settings: HTTP if a gateway URL is set, else Redis."""
        if self._transport is None:
            if self.conf.gateway_url:
                from sdk.transports.http import HttpTransport

                self._transport = HttpTransport(self.conf)
            else:
                from sdk.transports.redis import RedisTransport

                self._transport = RedisTransport(self.conf, self.codec)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._codec = None

    # -- registering ---------------------------------------------------------------------------
    @overload
    def task(self, fn: F, /) -> Task[Any, Any]: ...
    @overload
    def task(self, fn: None = None, /, **options: Any) -> Callable[[F], Task[Any, Any]]: ...

    def task(
        self,
        fn: Any = None,
        /,
        *,
        name: str | None = None,
        bind: bool = False,
        base: type[Task[Any, Any]] = Task,
        **options: Any,
    ) -> Any:
        """Register a function as a task; works bare (``@app.task``) and with options."""

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{f.__module__}.{f.__qualname__}"
            if task_name in self.tasks:
                raise DuplicateTask(f"a task named {task_name!r} is already registered")
            task = base(self, f, task_name, bind=bind, options=options)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def add_periodic_task(
        self,
        schedule: Schedule,
        sig: Any,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        **options: Any,
    ) -> str:
        """Celery's ``add_periodic_task``: run ``sig`` (a task, a task name or a signature,
        ``add.s(1, 2)``) on ``schedule`` (seconds, a timedelta or a ``crontab``); the
        scheduler upserts it on start. A signature's arguments and options are used
        where ``args``, ``kwargs`` and ``options`` give none."""
        entry = periodic_task(name, sig, schedule, args, kwargs, options)
        self.periodic_tasks.append(entry)
        return entry.name

    # -- HTTP tasks (docs/http-executor.md) ----------------------------------------------------
    def register_http_task(
        self,
        name: str,
        url: str,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        concurrency: int | None = None,
        queue: str | None = None,
        parameters: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Register (or replace) a task that ``--pool http`` workers run by sending each
        run to ``url``; ``options`` are task options (``max_retries=``, ``time_limit=``,
        ``rate_limit=``...). Runs are submitted by name: ``app.send_task(name, ...)``."""
        target = HttpTarget(
            url=url, method=method, headers=headers or {}, timeout=timeout, concurrency=concurrency
        )
        spec = HttpTaskSpec(target=target, queue=queue, options=options, parameters=parameters)
        self.transport.put_http_task(name, spec)

    def unregister_http_task(self, name: str) -> bool:
        """Remove an HTTP task; False if there was none."""
        return self.transport.delete_http_task(name)

    # -- submitting ----------------------------------------------------------------------------
    def send_task(
        self,
        name: str,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Submit a run of a task by name, registered here or not."""
        if "task_id" in options:
            options["idempotency_key"] = options.pop("task_id")
        call = Call(name, tuple(args or ()), dict(kwargs or {}), SendOptions(**options))
        return self.send_calls([call])[0]

    def send_calls(self, calls: Sequence[Call]) -> list[AsyncResult]:
        return [AsyncResult(i, self) for i in self.transport.send(calls)]

    async def send_calls_async(self, calls: Sequence[Call]) -> list[AsyncResult]:
        return [AsyncResult(i, self) for i in await self.transport.send_async(calls)]

    def AsyncResult(self, run_id: str) -> AsyncResult:
        return AsyncResult(run_id, self)

    def run_eagerly(self, task: Task[Any, Any], call: Call) -> EagerResult:
        """Run ``call`` inline, as an executor would (``task_always_eager``)."""
        run_id = call.options.idempotency_key or new_id()
        request = Request(
            id=run_id,
            task=task.name,
            args=tuple(call.args),
            kwargs=call.kwargs,
            is_eager=True,
            root_id=run_id,
        )
        token = current_request.set(request)
        try:
            try:
                value = task(*call.args, **call.kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run(_await(value))
            finally:
                current_request.reset(token)
        except Exception as exc:
            self._eager_callbacks(call.errbacks, run_id)  # link_error: given the run's id
            if self.conf.task_eager_propagates:
                raise
            return EagerResult(run_id, self, None, exc)
        self._eager_callbacks(call.callbacks, value)  # link: given the result
        return EagerResult(run_id, self, value, None)

    def _eager_callbacks(self, callbacks: Sequence[Call], value: Any) -> None:
        for callback in callbacks:
            args = callback.args if callback.immutable else (value, *callback.args)
            task = self.tasks.get(callback.task) or builtin(self, callback.task)
            if task is None:
                raise TaskNotFound(f"callback task {callback.task!r} is not registered here")
            self.run_eagerly(task, replace(callback, args=tuple(args)))


async def _await(value: Any) -> Any:
    return await value
