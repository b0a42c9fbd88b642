"""Task: a registered function, and the ways to run it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar

from sdk import canvas, schema
from sdk.calls import Call, SendOptions
from sdk.canvas import Signature, callbacks_of
from sdk.context import Request, get_request
from sdk.errors import Retry

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """Options a task may declare, with their defaults (Celery's names and meanings)."""

    queue: str | None = None
    priority: int | None = None
    max_retries: int | None = 3
    default_retry_delay: float = 180
    autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter: bool = True
    rate_limit: str | float | None = None
    soft_time_limit: float | None = None
    time_limit: float | None = None
    ignore_result: bool = False
    expires: float | str | None = None

    @classmethod
    def of(cls, options: dict[str, Any]) -> TaskOptions:
        unknown = set(options) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown task option(s): {', '.join(sorted(unknown))}")
        if "autoretry_for" in options:
            options = {**options, "autoretry_for": tuple(options["autoretry_for"])}
        made = cls(**options)
        parse_rate(made.rate_limit)  # a bad rate is an error at import, not at run
        return made


_SEND_FIELDS = set(SendOptions.__struct_fields__)
_CALLBACKS = ("link", "link_error")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


BATCH = 1_000  # runs per round trip in submit_many (per request through the gateway)


def _chunks(calls: list[Call]) -> Iterator[list[Call]]:
    for start in range(0, len(calls), BATCH):
        yield calls[start : start + BATCH]


def parse_rate(rate: str | float | None) -> float | None:
    """Runs per second of a Celery-style rate limit: ``"100/s"``, ``"10/m"``, ``"5/h"``, 20."""
    if rate is None or rate == "":
        return None
    if isinstance(rate, int | float):
        per_second = float(rate)
    else:
        count, _, unit = str(rate).partition("/")
        try:
            per_second = float(count) / _PER[unit.strip() or "s"]
        except (KeyError, ValueError):
            raise ValueError(
                f"rate_limit must look like '100/s', '10/m' or '5/h', not {rate!r}"
            ) from None
    if per_second <= 0:
        raise ValueError(f"rate_limit must be positive, not {rate!r}")
    return per_second


class Task(Generic[P, R]):
    """A function registered with an App. Subclass it for ``on_success``/``on_failure`` hooks.

    Calling the task runs the function here; ``delay``/``apply_async`` submit a run.
    """

    name: str
    bind: ClassVar[bool] = False

    def __init__(
        self, app: App, fn: Callable[..., R], name: str, *, bind: bool, options: dict[str, Any]
    ) -> None:
        self.options = TaskOptions.of(options)
        self.app = app
        self.fn = fn
        self.name = name
        self.bound = bind
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bound:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    # -- catalog ---------------------------------------------------------------------------
    def catalog_entry(self, default_queue: str) -> dict[str, Any]:
        """What executors publish for ``GET /tasks/{name}`` (SPEC §12)."""
        parameters, positional = schema.describe(self.fn, bound=self.bound)
        opts = {f.name: getattr(self.options, f.name) for f in fields(self.options)}
        del opts["queue"]
        opts["autoretry_for"] = [getattr(e, "__name__", str(e)) for e in opts["autoretry_for"]]
        return {
            "name": self.name,
            "queue": self.options.queue or default_queue,
            "options": opts,
            "parameters": parameters,
            "positional": positional,
            "doc": (self.fn.__doc__ or "").strip() or None,
        }

    # -- signatures (sdk/canvas.py) ---------------------------------------------------------
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task: ``add.s(2, 2)``; later links give it their result."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it takes no result from a link before it."""
        return Signature(self, args, kwargs, immutable=True)

    def signature(
        self, args: Any = None, kwargs: Any = None, *, immutable: bool = False, **options: Any
    ) -> Signature:
        return Signature(self, args or (), kwargs, options, immutable=immutable)

    subtask = signature

    def map(self, items: Iterable[Any]) -> Signature:
        """One run calling this task on each item in turn; its result is their list."""
        return canvas.map_of(self, items)

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        """As ``map``, each item spread as positional arguments."""
        return canvas.starmap(self, items)

    def chunks(self, items: Iterable[Iterable[Any]], n: int) -> canvas.Chunks:
        """The items' calls in runs of ``n`` each (a group of ``starmap`` runs)."""
        return canvas.Chunks(self, items, n)

    # -- submitting ------------------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        return self.apply_async(args, kwargs)

    async def delay_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        return await self.apply_async_async(args, kwargs)

    def _call(self, args: Any, kwargs: Any, options: dict[str, Any]) -> Call:
        unknown = set(options) - _SEND_FIELDS - {"task_id", "countdown", "eta", *_CALLBACKS}
        if unknown:
            raise TypeError(f"unknown apply_async option(s): {', '.join(sorted(unknown))}")
        if "task_id" in options:
            options["idempotency_key"] = options.pop("task_id")
        callbacks = callbacks_of(options.pop("link", None))
        errbacks = callbacks_of(options.pop("link_error", None))
        defaults = {
            k: getattr(self.options, k)
            for k in ("queue", "priority", "max_retries", "ignore_result", "expires")
        }
        merged = {**{k: v for k, v in defaults.items() if v is not None}, **options}
        return Call(
            self.name,
            tuple(args or ()),
            dict(kwargs or {}),
            SendOptions(**merged),
            callbacks=callbacks,
            errbacks=errbacks,
        )

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult:
        call = self._call(args, kwargs, options)
        if self.app.conf.task_always_eager:
            return self.app.run_eagerly(self, call)
        return self.app.send_calls([call])[0]

    async def apply_async_async(
        self, args: Any = None, kwargs: Any = None, **options: Any
    ) -> AsyncResult:
        call = self._call(args, kwargs, options)
        if self.app.conf.task_always_eager:
            return self.app.run_eagerly(self, call)
        return (await self.app.send_calls_async([call]))[0]

    def submit_many(self, argsets: Iterable[Sequence[Any]], **options: Any) -> list[AsyncResult]:
        """One run per tuple of positional arguments, sent in batches (one round trip per
        ``BATCH`` runs) rather than one ``delay`` each; ``options`` apply to every run."""
        calls = self._calls(argsets, options)
        if self.app.conf.task_always_eager:
            return [self.app.run_eagerly(self, call) for call in calls]
        return [r for chunk in _chunks(calls) for r in self.app.send_calls(chunk)]

    async def submit_many_async(
        self, argsets: Iterable[Sequence[Any]], **options: Any
    ) -> list[AsyncResult]:
        calls = self._calls(argsets, options)
        if self.app.conf.task_always_eager:
            return [self.app.run_eagerly(self, call) for call in calls]
        return [r for chunk in _chunks(calls) for r in await self.app.send_calls_async(chunk)]

    def _calls(self, argsets: Iterable[Sequence[Any]], options: dict[str, Any]) -> list[Call]:
        if {"task_id", "idempotency_key"} & set(options):
            raise TypeError("submit_many cannot give every run the same id: use apply_async")
        return [self._call(args, None, dict(options)) for args in argsets]

    # -- inside a run ----------------------------------------------------------------------
    @property
    def request(self) -> Request:
        return get_request()

    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
    ) -> Retry:
        """Ask for this run to run again later; raises (Celery style: ``raise self.retry()``)."""
        raise Retry(exc=exc, countdown=countdown, max_retries=max_retries)

    def update_state(self, state: str, meta: Any = None) -> None:
        """Record a custom state (e.g. ``PROGRESS``) with ``meta``, visible on the run."""
        updater = self.request.update_state
        if updater is not None:
            updater(state, meta)

    # -- hooks, for subclasses ---------------------------------------------------------------
    def on_success(self, retval: Any, run_id: str, args: Any, kwargs: Any) -> None:
        """Called in the executor after the run succeeded."""

    def on_failure(
        self, exc: BaseException, run_id: str, args: Any, kwargs: Any, einfo: str
    ) -> None:
        """Called in the executor after the run failed for good."""

    def on_retry(self, exc: BaseException, run_id: str, args: Any, kwargs: Any, einfo: str) -> None:
        """Called in the executor when the run will be retried."""
