"""Canvas: task calls as values (signatures) and chains of them, as in Celery.

A ``Signature`` is a task name with arguments and options, made now and sent later:
``add.s(2, 2)``, ``add.si(2, 2)`` (immutable: it takes no result from a link before it),
``signature("proj.add", (2, 2), {}, {"countdown": 5})``. ``a | b`` chains them: each
link's result becomes the first argument of the next, and the chain's result is the
last link's. docs/canvas.md says what is stored where, and how it differs from Celery.

A chain is sent as one run whose envelope carries the later links, each with its id
given at submission (of the first run's partition); the worker that finishes a link submits
the next one in the same script call that stores the outcome, so no crash loses a link
or starts one twice (``sdk/protocol/scripts/finish.lua``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec

from sdk.builtins import MAP, STARMAP, builtin
from sdk.calls import Call, SendOptions, Step, chord_call
from sdk.errors import InvalidRequest
from sdk.protocol.clock import new_id
from sdk.result import AsyncResult, EagerResult, GroupResult

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.task import Task


_CALLBACK_OPTIONS = frozenset({"link", "link_error"})  # options that hold signatures


class SignatureJSON(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A signature's JSON form: what ``to_dict()`` gives and ``signature()`` takes."""

    task: str
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    immutable: bool = False


class Signature:
    """One task call, with its arguments and options, to make later."""

    def __init__(
        self,
        task: str | Task[Any, Any],
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        app: App | None = None,
    ) -> None:
        if isinstance(task, str):
            self.name, self._app = task, app
        else:
            self.name, self._app = task.name, app or task.app
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = dict(options or {})
        self.immutable = immutable

    @property
    def task(self) -> str:
        """The task's name (Celery's ``sig.task``)."""
        return self.name

    @property
    def app(self) -> App:
        if self._app is None:
            raise InvalidRequest(f"signature {self!r} has no app: give app= or use a task's .s()")
        return self._app

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)}){'!' if self.immutable else ''}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable (set), as Celery's

    # -- deriving ----------------------------------------------------------------------------
    def set(self, *, immutable: bool | None = None, **options: Any) -> Signature:
        """Change options in place (``queue=``, ``countdown=``, ``priority=``...); returns it."""
        if immutable is not None:
            self.immutable = immutable
        self.options.update(options)
        return self

    def clone(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature:
        """A copy, with ``args`` in front of its own and ``kwargs`` over its own (unless it
        is immutable, when only the options change)."""
        merged_args, merged_kwargs = self._merge(tuple(args), dict(kwargs or {}))
        return Signature(
            self.name,
            merged_args,
            merged_kwargs,
            {**self.options, **options},
            immutable=self.immutable,
            app=self._app,
        )

    def _merge(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self.immutable:
            return self.args, dict(self.kwargs)
        return args + self.args, {**self.kwargs, **kwargs}

    # -- running -------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now, as Celery's ``sig()`` does (not a run)."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        return self.app.tasks[self.name](*merged_args, **merged_kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Submit a run of it, ``args`` in front of its own (partial application)."""
        call = self.clone(args, kwargs, **options).to_call()
        task = self.app.tasks.get(self.name) or builtin(self.app, self.name)
        if self.app.conf.task_always_eager and task is not None:
            return self.app.run_eagerly(task, call)
        return self.app.send_calls([call])[0]

    def to_call(self) -> Call:
        """The run to make, with the task's own default options under the signature's."""
        task = self._app.tasks.get(self.name) if self._app is not None else None
        options = dict(self.options)
        if task is not None:
            call = task._call(self.args, self.kwargs, options)
        else:
            callbacks = callbacks_of(options.pop("link", None))
            errbacks = callbacks_of(options.pop("link_error", None))
            call = Call(
                self.name,
                self.args,
                self.kwargs,
                _send_options(options),
                callbacks=callbacks,
                errbacks=errbacks,
            )
        return replace(call, immutable=self.immutable)

    def link(self, callback: Signature) -> Signature:
        """Run ``callback`` with this one's result once it succeeds (``link=``)."""
        self.options["link"] = [*_as_list(self.options.get("link")), callback]
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` with this run's id if it does not succeed (``link_error=``)."""
        self.options["link_error"] = [*_as_list(self.options.get("link_error")), errback]
        return errback

    def on_error(self, errback: Signature) -> Signature:
        """``link_error``, returning this signature (as Celery's ``on_error``)."""
        self.link_error(errback)
        return self

    def __or__(self, other: ChainStep | Chain) -> Chain:
        return Chain(self, other)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        options = {
            k: [c.to_dict() for c in _as_list(v)] if k in _CALLBACK_OPTIONS else v
            for k, v in self.options.items()
        }
        spec = SignatureJSON(
            task=self.name,
            args=list(self.args),
            kwargs=self.kwargs,
            options=options,
            immutable=self.immutable,
        )
        return msgspec.to_builtins(spec)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: App | None = None) -> Signature:
        try:
            spec = msgspec.convert(data, SignatureJSON)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"not a signature: {exc}") from exc
        options = dict(spec.options)
        for name in _CALLBACK_OPTIONS & set(options):
            given = options[name]
            listed = given if isinstance(given, list) else [given]
            options[name] = [Signature.from_dict(c, app) for c in listed]
        return cls(spec.task, spec.args, spec.kwargs, options, immutable=spec.immutable, app=app)


def _as_list(given: Any) -> list[Signature]:
    if given is None:
        return []
    return [given] if isinstance(given, Signature) else list(given)


def callbacks_of(given: Signature | Iterable[Signature] | None) -> tuple[Call, ...]:
    """``link=`` / ``link_error=``: one signature or several, each a run of its own."""
    sigs = _as_list(given)
    if not all(isinstance(s, Signature) for s in sigs):
        raise TypeError(f"link= and link_error= take signatures, not {given!r}")
    return tuple(s.to_call() for s in sigs)


def _send_options(options: dict[str, Any]) -> SendOptions:
    try:
        return SendOptions(**options)
    except TypeError as exc:
        raise TypeError(f"unknown apply_async option(s): {exc}") from None


def signature(
    task: str | Task[Any, Any] | Signature | Mapping[str, Any],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    immutable: bool = False,
    app: App | None = None,
) -> Signature:
    """Celery's ``signature()``: from a task or its name, or from the JSON form."""
    if isinstance(task, Signature):
        return task.clone()
    if isinstance(task, Mapping):
        return Signature.from_dict(task, app)
    return Signature(task, args, kwargs, options, immutable=immutable, app=app)


class Chain:
    """Steps run one after another, each given the result of the one before (unless it
    is immutable); the chain's result is the last one's. ``chain(a, b)`` or ``a | b``.
    A group step runs its members side by side, each given the result before, and the
    next step is given the list of theirs (``a | group(b, c) | d`` is
    ``a | chord([b, c], d)``, as in Celery)."""

    def __init__(self, *links: ChainStep | Chain | Iterable[Signature]) -> None:
        flat: list[ChainStep] = []
        for link in links:
            if isinstance(link, Chain):
                flat += link.links
            elif isinstance(link, Chord) and isinstance(link.body, Chain):
                # a chord whose body is a chain: the chord of its first link, then the rest
                first, *rest = link.body.links
                if not isinstance(first, Signature):
                    raise InvalidRequest(f"a chord's body starts with a signature, not {first!r}")
                flat += [Chord(link.header, first), *rest]
            elif isinstance(link, Chord) and isinstance(link.body, Group):
                flat += [Chord(link.header), link.body]
            elif isinstance(link, Signature | Group | Chord):
                flat.append(link)
            elif isinstance(link, Iterable) and not isinstance(link, str | bytes | Mapping):
                flat += Chain(*link).links
            else:
                raise TypeError(f"a chain links signatures, groups and chords, not {link!r}")
        self.links: list[ChainStep] = flat

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.links))

    def clone(self) -> Chain:
        """A copy, its steps copies too (options set on it never reach the original)."""
        return Chain(*(step.clone() for step in self.links))

    def __or__(self, other: ChainStep | Chain) -> Chain:
        return Chain(self, other)

    def _steps(self) -> list[Signature | Chord]:
        """The links with each group made a chord: of the signature after it, else of the
        built-in body that collects its results (``sdk/builtins.py``)."""
        steps: list[Signature | Chord] = []
        links = list(self.links)
        while links:
            link = links.pop(0)
            if isinstance(link, Group):
                after = links[0] if links else None
                body = after if isinstance(after, Signature) else None
                if body is not None:
                    links.pop(0)
                link = Chord(link, body)
            steps.append(link)
        return steps

    def to_call(self) -> Call:
        """The whole chain as one call (its first step) carrying the rest; the transport
        gives every run its id (``send_workflows`` answers them)."""
        if not self.links:
            raise InvalidRequest("an empty chain has nothing to run")
        first, *rest = (_step_call(s) for s in self._steps())
        return replace(first, chain=tuple(rest))  # keeps the first's callbacks

    def send(self) -> AsyncResult | GroupResult:
        """Submit it (as one run carrying its later links): the last link's result, or
        the ``GroupResult`` of the group it ends with."""
        app = self.app
        [steps] = app.transport.send_workflows([self.to_call()])
        return self.results(app, steps)

    def results(self, app: App, steps: list[Step]) -> AsyncResult | GroupResult:
        """The chain's result from the ids of its sent steps, each result's ``parent`` the
        one before (a chord's body's, its header's ``GroupResult``)."""
        result: AsyncResult | GroupResult | None = None
        for step in steps:
            if step.header is not None:
                members = [AsyncResult(i, app) for i in step.header]
                result = GroupResult(new_id(), members, app, parent=_single(result))
            result = AsyncResult(step.id, app, parent=result)
        assert result is not None
        last = self._steps()[-1]
        if isinstance(last, Chord) and last.body is None:  # it ends with a group
            return result.parent if isinstance(result.parent, GroupResult) else result
        return result

    @property
    def app(self) -> App:
        if not self.links:
            raise InvalidRequest("an empty chain has nothing to run")
        return self.links[0].app

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult | GroupResult:
        """Send it, as Celery's ``chain()`` does (it is not run here)."""
        return self.apply_async(args, kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult | GroupResult:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult | GroupResult:
        """Send the chain; ``args``, ``kwargs`` and ``options`` go to its first step. The
        result is the last step's, its ``parent`` the one before, and so on."""
        app = self.app
        link, link_error = options.pop("link", None), options.pop("link_error", None)
        first, *rest = self.links
        links = [_with_args(first, tuple(args), dict(kwargs or {}), options)]
        links += [step.clone() for step in rest]  # link_error= below sets their options
        last = links[-1]
        if link is not None:  # as Celery: the chain's callback follows its last link
            if not isinstance(last, Signature):
                raise InvalidRequest("link= on a chain that ends with a group or a chord")
            last.options["link"] = [*_as_list(last.options.get("link")), *_as_list(link)]
        if link_error is not None:  # and its errback any link that fails
            for s in _signatures(links):
                s.options["link_error"] = [
                    *_as_list(s.options.get("link_error")),
                    *_as_list(link_error),
                ]
        if app.conf.task_always_eager:
            return Chain(*links)._run_eagerly(app)
        return Chain(*links).send()

    def _run_eagerly(self, app: App) -> AsyncResult | GroupResult:
        result: AsyncResult | GroupResult | None = None
        for step in self.links:
            given: tuple[Any, ...] = () if result is None else (result.get(),)
            eager: AsyncResult | GroupResult
            if isinstance(step, Signature):
                run = step.clone(() if step.immutable else given)
                eager = app.run_eagerly(app.tasks[run.name], run.to_call())
            else:
                header = step.header if isinstance(step, Chord) else step
                eager = Group(*header._with(given, {}, {})).apply_async()
                if isinstance(step, Chord) and step.body is not None:
                    body = Chain(step.body).links
                    first = _with_args(body[0], (eager.get(),), {}, {})
                    eager = Chain(first, *body[1:])._run_eagerly(app)
            if isinstance(eager, GroupResult) or isinstance(step, Signature):
                eager.parent = _single(result)  # the step before
            result = eager
            if isinstance(eager, EagerResult) and eager.failed():
                break
        assert result is not None
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"chain": [link.to_dict() for link in self.links]}


def _single(result: AsyncResult | GroupResult | None) -> AsyncResult | None:
    """A group's parent: the run before it (a group directly after a group has none)."""
    return result if isinstance(result, AsyncResult) else None


def _with_args(
    step: ChainStep, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
) -> ChainStep:
    """A copy of ``step`` with ``args`` in front of its own: of a group, each member's; of
    a chord, each of its header's."""
    if isinstance(step, Signature):
        return step.clone(args, kwargs, **options)
    if isinstance(step, Group):
        return Group(*step._with(args, kwargs, options))
    body = None if step.body is None else step.body.clone()
    return Chord(Group(*step.header._with(args, kwargs, options)), body)


def _signatures(steps: Iterable[ChainStep | Chain]) -> list[Signature]:
    """Every signature in ``steps``, at any depth (for ``link_error=`` on a chain)."""
    out: list[Signature] = []
    for step in steps:
        if isinstance(step, Signature):
            out.append(step)
        elif isinstance(step, Chain):
            out += _signatures(step.links)
        elif isinstance(step, Group):
            out += _signatures(step.members)
        else:
            out += _signatures(step.header.members)
            if step.body is not None:
                out += _signatures([step.body])
    return out


def _step_call(step: Signature | Chord) -> Call:
    """A chain step as a call: a chord's, its body with its header's calls."""
    if isinstance(step, Signature):
        return step.to_call()
    if step.body is not None and not isinstance(step.body, Signature):
        raise InvalidRequest(f"a chord's body here is a signature, not {step.body!r}")
    members = [_member_call(m) for m in step.header.members]
    return chord_call(members, None if step.body is None else step.body.to_call())


def _header_run(member: Signature | Chain | Chord) -> Signature | Chain:
    """A header run: a signature, or a chain of signatures."""
    if isinstance(member, Chord) or (
        isinstance(member, Chain) and not all(isinstance(s, Signature) for s in member.links)
    ):
        raise InvalidRequest(f"a chord's header holds signatures and chains of them: {member!r}")
    return member


def _member_call(member: Signature | Chain | Chord) -> Call:
    return _header_run(member).to_call()


class Group:
    """Runs that run side by side; the result is the list of theirs, in order.
    ``group(add.s(i, i) for i in range(10))``; ``group(...) | body`` is a chord. A member
    may be a chain (of its own steps) or a chord."""

    def __init__(self, *members: Signature | Chain | Chord | Iterable[Signature | Chain]) -> None:
        flat: list[Signature | Chain | Chord] = []
        for member in members:
            if isinstance(member, Signature | Chain | Chord):
                flat.append(member)
            elif isinstance(member, Group):
                flat += member.members
            elif isinstance(member, Iterable) and not isinstance(member, str | bytes | Mapping):
                flat += Group(*member).members
            else:
                raise TypeError(f"a group holds signatures, chains and chords, not {member!r}")
        self.members: list[Signature | Chain | Chord] = flat

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.members))})"

    def __len__(self) -> int:
        return len(self.members)

    def clone(self) -> Group:
        """A copy, its members copies too."""
        return Group(*(m.clone() for m in self.members))

    def __or__(self, other: Signature | Group | Chord | Chain) -> Chain | Chord:
        if isinstance(other, Signature):
            return Chord(self, other)
        return Chain(self, other)

    @property
    def app(self) -> App:
        if not self.members:
            raise InvalidRequest("an empty group has nothing to run")
        return self.members[0].app

    def __call__(self, *args: Any, **kwargs: Any) -> GroupResult:
        return self.apply_async(args, kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> GroupResult:
        return self.apply_async(args, kwargs)

    def _with(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> list[Signature | Chain | Chord]:
        """Members with ``args`` in front of each one's own (of a chain: its first step's)."""
        out: list[Signature | Chain | Chord] = []
        for m in self.members:
            if isinstance(m, Chain):
                first, *rest = m.links
                out.append(
                    Chain(_with_args(first, args, kwargs, options), *(s.clone() for s in rest))
                )
            else:
                out.append(_with_args(m, args, kwargs, options))  # type: ignore[arg-type]  # of a signature or a chord: the same kind
        return out

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> GroupResult:
        """Submit every member at once (``Transport.send_group``: over Redis one round trip
        for its signatures and one for its chains and chords; over the gateway one
        ``POST /workflows``, which keeps the group for ``GroupResult.restore``)."""
        app = self.app
        members = self._with(tuple(args), dict(kwargs or {}), options)
        if app.conf.task_always_eager:
            return GroupResult(new_id(), [_one(m.apply_async()) for m in members], app)
        flows = [m if isinstance(m, Signature | Chain) else Chain(m) for m in members]
        group_id, sent = app.transport.send_group([f.to_call() for f in flows])
        results = [
            AsyncResult(steps[-1].id, app)
            if isinstance(f, Signature)
            else _one(f.results(app, steps))
            for f, steps in zip(flows, sent, strict=True)
        ]
        return GroupResult(group_id, results, app)

    def to_dict(self) -> dict[str, Any]:
        return {"group": [m.to_dict() for m in self.members]}


def _one(result: AsyncResult | GroupResult) -> AsyncResult:
    """A group member's result: a member that ends with a group is not one run."""
    if isinstance(result, GroupResult):
        raise InvalidRequest("a group's member ends with a group: put a body after it")
    return result


class Chord:
    """A group (the header) and a body that runs once, with the list of the header's
    results in order in front of its arguments: ``chord(header, body)``, ``group | body``.
    The result is the body's; its ``parent`` the header's ``GroupResult``. A header run
    may be a chain (of signatures); the body may be a chain."""

    def __init__(
        self,
        header: Group | Iterable[Signature | Chain],
        body: Signature | Chain | Group | None = None,
    ) -> None:
        self.header = header if isinstance(header, Group) else Group(*header)
        self.body = body

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    @property
    def app(self) -> App:
        return (self.body or self.header).app

    def __or__(self, other: ChainStep | Chain) -> Chain:
        return Chain(self, other)

    def __call__(self, body: Signature | Chain | None = None, **options: Any) -> AsyncResult:
        """``chord(header)(body)`` or ``chord(header, body)()``: send it."""
        return Chord(self.header, body or self.body).apply_async(**options)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def clone(self) -> Chord:
        """A copy, its header's and body's signatures copies too."""
        return Chord(self.header.clone(), None if self.body is None else self.body.clone())

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Send the chord; ``args``, ``kwargs`` and ``options`` go to its body."""
        if self.body is None:
            raise InvalidRequest("a chord needs a body: chord(header, body) or chord(header)(body)")
        first, *rest = Chain(self.body).links
        if isinstance(first, Chord):
            raise InvalidRequest(f"a chord's body is a signature, a chain or a group: {first!r}")
        body = _with_args(first, tuple(args), dict(kwargs or {}), options)
        assert not isinstance(body, Chord)  # the same kind as ``first``
        app = body.app
        for member in self.header.members:
            _header_run(member)
        if not self.header.members:  # nothing to wait for: the body runs at once, with no results
            return _one(Chain(_with_args(body, ([],), {}, {}), *rest).apply_async())
        if app.conf.task_always_eager:
            header = self.header.apply_async()
            result = _one(Chain(_with_args(body, (header.get(),), {}, {}), *rest).apply_async())
            _first_of(result).parent = header
            return result
        return _one(Chain(Chord(self.header, body), *rest).send())

    def to_dict(self) -> dict[str, Any]:
        return {
            "chord": {
                "header": [m.to_dict() for m in self.header.members],
                "body": None if self.body is None else self.body.to_dict(),
            }
        }


ChainStep = Signature | Group | Chord  # a step of a chain


def _first_of(result: AsyncResult) -> AsyncResult:
    """The first run of a chain's result (walking ``parent``)."""
    while isinstance(result.parent, AsyncResult):
        result = result.parent
    return result


class Chunks:
    """``task.chunks(items, n)``: the items' calls in runs of ``n`` each (a group of
    ``starmap`` runs); the result is a ``GroupResult`` of lists."""

    def __init__(self, task: Task[Any, Any], items: Iterable[Iterable[Any]], n: int) -> None:
        if n < 1:
            raise InvalidRequest(f"chunks of {n}: give at least 1")
        self.task, self.items, self.n = task, [list(i) for i in items], n

    def group(self) -> Group:
        slices = [self.items[i : i + self.n] for i in range(0, len(self.items), self.n)]
        return Group(starmap(self.task, part) for part in slices)

    def __call__(self, **options: Any) -> GroupResult:
        return self.apply_async(**options)

    def apply_async(self, **options: Any) -> GroupResult:
        return self.group().apply_async(**options)


def map_of(task: Task[Any, Any], items: Iterable[Any]) -> Signature:
    """``task.map(items)``: one run calling ``task(item)`` for each item, in order."""
    return Signature(MAP, (task.name, list(items)), app=task.app)


def starmap(task: Task[Any, Any], items: Iterable[Iterable[Any]]) -> Signature:
    """``task.starmap(items)``: one run calling ``task(*item)`` for each item."""
    return Signature(STARMAP, (task.name, [list(i) for i in items]), app=task.app)


chain = Chain
group = Group
chord = Chord

__all__ = [
    "Chain",
    "Chord",
    "Chunks",
    "Group",
    "Signature",
    "SignatureJSON",
    "chain",
    "chord",
    "group",
    "map_of",
    "signature",
    "starmap",
]
