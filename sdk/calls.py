"""From "call task X with these arguments and options" to a Submission on the wire.

The gateway (from an HTTP body) and the SDK (from ``apply_async``) both go through
``build_submission``, so a run looks the same whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from sdk import protocol as p
from sdk.builtins import COLLECT
from sdk.errors import InvalidRequest
from sdk.protocol import plans
from sdk.protocol.envelope import Link
from sdk.protocol.keys import DEFAULT_PRIORITY, PRIORITIES, Keys
from sdk.protocol.plans import ScriptCall, Submission
from sdk.serializers import Codec

Number = int | float


class SendOptions(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Per-run options: the fields of a submission besides ``args`` and ``kwargs``."""

    queue: str | None = None
    priority: int | None = None
    countdown: Number | None = None  # seconds from now
    eta: str | Number | None = None  # ISO 8601, or seconds since the epoch
    expires: str | Number | None = None  # seconds from now, or ISO 8601
    max_retries: int | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    ignore_result: bool | None = None


class SubmitBody(SendOptions, kw_only=True, omit_defaults=True):
    """The JSON body of ``POST /tasks/{name}`` (and of each batch item)."""

    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)


class BatchBody(msgspec.Struct):
    items: list[SubmitBody]


@dataclass(frozen=True, slots=True)
class Call:
    """A request to run ``task``: what a producer hands to a transport. ``chain``: the
    calls that run after it, each given the result before it (``sdk/canvas.py``).
    ``header``: this call is a chord's body, run once those calls have all ended, with
    the list of their results in front of its args (in a chain, each of them is given
    the result before instead); a header call may be a chain of its own."""

    task: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]
    options: SendOptions
    chain: tuple[Call, ...] = ()
    immutable: bool = False  # as a link of a chain: not given the result before it
    callbacks: tuple[Call, ...] = ()  # link=: runs given its result once it succeeds
    errbacks: tuple[Call, ...] = ()  # link_error=: runs given its id if it does not
    header: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a sent workflow: its run's id and, for a chord, the result ids of its
    header (of a header chain, its last link's)."""

    id: str
    header: tuple[str, ...] | None = None


def chord_call(header: Sequence[Call], body: Call | None) -> Call:
    """A chord as one call: its body with the header's calls. A group with no body (one
    that ends a chain, or is followed by another group) gets the built-in body that
    collects its results (``sdk/builtins.py``), on the queue of its first run."""
    if not header:
        raise InvalidRequest("an empty group in a chain has nothing to run")
    if body is None:
        body = Call(COLLECT, (), {}, SendOptions(queue=header[0].options.queue))
    return replace(body, header=tuple(header))


def _eta_ms(opts: SendOptions, now: int) -> int | None:
    if opts.countdown is not None:
        return now + int(opts.countdown * 1000) if opts.countdown > 0 else None
    if opts.eta is None:
        return None
    if isinstance(opts.eta, str):
        return p.parse_time(opts.eta)
    return int(opts.eta * 1000)


def _expires_ms(opts: SendOptions, now: int) -> int | None:
    if opts.expires is None:
        return None
    if isinstance(opts.expires, str):
        return p.parse_time(opts.expires)
    return now + int(opts.expires * 1000)


def build_message(
    call: Call, *, default_queue: str, content_type: str, run_id: str | None = None
) -> p.Message:
    opts = call.options
    priority = DEFAULT_PRIORITY if opts.priority is None else opts.priority
    if priority not in PRIORITIES:
        raise InvalidRequest(f"priority must be 0-9, not {priority}")
    queue = opts.queue or default_queue
    if not queue or len(queue) > 200 or any(c in queue for c in "{}: "):
        raise InvalidRequest(f"invalid queue name {queue!r}")
    now = p.now_ms()
    run_id = run_id or p.new_id()
    return p.Message(
        id=run_id,
        task=call.task,
        queue=queue,
        priority=priority,
        content_type=content_type,
        created_at=now,
        eta=_eta_ms(opts, now),
        expires=_expires_ms(opts, now),
        max_retries=opts.max_retries,
        parent_id=opts.parent_id,
        root_id=opts.root_id or opts.parent_id or run_id,  # top-level runs are their own root
        callback_url=opts.callback_url,
        ignore_result=bool(opts.ignore_result),
    )


def build_submission(
    call: Call,
    codec: Codec,
    *,
    default_queue: str,
    content_type: str,
    run_id: str | None = None,
    keys: Keys | None = None,
) -> Submission:
    """Encode ``call`` as a run: a fresh envelope and the serialized arguments; with a
    chain, its links ride in the envelope, with ids of this run's partition (``keys``)."""
    message = build_message(
        call, default_queue=default_queue, content_type=content_type, run_id=run_id
    )
    body = _body(call, codec, content_type, message)
    if call.chain or call.callbacks or call.errbacks:
        if keys is None:
            raise ValueError("a chain or a link needs the key layout, for its runs' ids")
        links = _Links(keys, keys.partition(message.id), codec, default_queue, content_type)
        message.chain = links.of(call.chain) or None
        _attach(message, call, links)
    return Submission(message, body)


@dataclass(frozen=True, slots=True)
class Plan:
    """A workflow, ready to send: the chord to open first, if it starts with one, then the
    runs to queue; ``steps``: the ids of its steps, in order."""

    open: ScriptCall[bool] | None
    submissions: list[Submission]
    steps: list[Step]


def build_workflow(
    call: Call,
    codec: Codec,
    keys: Keys,
    *,
    default_queue: str,
    content_type: str,
) -> Plan:
    """``call`` and what follows it as one plan, every run of one partition: a chain is
    its first run, carrying the later links; a chord (``call.header``) opens a hash that
    holds its body (and the chain after it) until its header, queued here, has ended."""

    def submission(c: Call) -> Submission:
        return build_submission(
            c, codec, default_queue=default_queue, content_type=content_type, keys=keys
        )

    if not call.header:
        sub = submission(call)
        return Plan(None, [sub], [Step(sub.message.id), *_steps_of(sub.message.chain or [])])
    body = submission(replace(call, header=()))
    m = body.message
    m.chord_body = True
    links = _Links(keys, keys.partition(m.id), codec, default_queue, content_type)
    header = [_counted(links.member(c, absolute=True), m, i) for i, c in enumerate(call.header)]
    subs = [Submission(h.message, h.body) for h in header]
    first = Step(m.id, tuple(map(_last_id, header)))
    return Plan(
        plans.chord_open(keys, body, len(subs), content_type),
        subs,
        [first, *_steps_of(m.chain or [])],
    )


def _steps_of(links: Sequence[Link]) -> list[Step]:
    """The steps of a chain's later links."""
    return [Step(k.message.id, _header_ids(k)) for k in links]


def _header_ids(link: Link) -> tuple[str, ...] | None:
    return None if link.header is None else tuple(map(_last_id, link.header))


def _last_id(member: Link) -> str:
    """A header run's result id: of a chain, its last link's."""
    chain = member.message.chain
    return chain[-1].message.id if chain else member.message.id


def _counted(member: Link, body: p.Message, index: int) -> Link:
    """``member`` as header run ``index`` of ``body``'s chord: the run that ends it (of a
    chain, its last link) counts in the chord."""
    chain = member.message.chain
    last = chain[-1].message if chain else member.message
    last.chord = p.ChordRef(
        body_id=body.id,
        body_task=body.task,
        body_queue=body.queue,
        body_priority=body.priority,
        index=index,
    )
    return member


def _attach(message: p.Message, call: Call, links: _Links) -> None:
    message.link = links.of(call.callbacks) or None
    message.link_error = links.of(call.errbacks) or None


@dataclass(frozen=True, slots=True)
class _Links:
    """Builds later runs (chain links, callbacks) with ids of one partition."""

    keys: Keys
    part: int
    codec: Codec
    default_queue: str
    content_type: str

    def of(self, calls: tuple[Call, ...]) -> list[Link]:
        return [self.link(c, self.keys.new_run_id(self.part)) for c in calls]

    def link(self, call: Call, run_id: str) -> Link:
        """A later run: its countdown and expiry count from when the run before ends; of a
        chord (``call.header``), its body, with the header's runs."""
        if call.chain:
            raise InvalidRequest("a link of a chain cannot carry a chain of its own")
        link = self._run(call, run_id)
        if call.header:
            link.message.chord_body = True
            link.header = [
                _counted(self.member(c), link.message, i) for i, c in enumerate(call.header)
            ]
        return link

    def member(self, call: Call, *, absolute: bool = False) -> Link:
        """A chord's header run, maybe a chain (its later links in its envelope);
        ``absolute``: queued now (its countdown counts from now), not by a later finish."""
        if call.header or any(c.header for c in call.chain):
            raise InvalidRequest("a chord's header holds signatures and chains of them")
        run_id = self.keys.new_run_id(self.part)
        if absolute:
            sub = build_submission(
                call,
                self.codec,
                default_queue=self.default_queue,
                content_type=self.content_type,
                run_id=run_id,
                keys=self.keys,
            )
            return Link(message=sub.message, body=sub.body)
        member = self._run(replace(call, chain=()), run_id)
        member.message.chain = self.of(call.chain) or None
        return member

    def _run(self, call: Call, run_id: str) -> Link:
        opts = call.options
        if opts.eta is not None or isinstance(opts.expires, str):
            raise InvalidRequest("a link of a chain takes countdown= and expires= in seconds")
        message = build_message(
            Call(call.task, call.args, call.kwargs, _relative(opts)),
            default_queue=self.default_queue,
            content_type=self.content_type,
            run_id=run_id,
        )
        _attach(message, call, self)
        return Link(
            message=message,
            body=_body(call, self.codec, self.content_type, message),
            immutable=call.immutable,
            countdown_ms=None if opts.countdown is None else int(opts.countdown * 1000),
            expires_ms=None if opts.expires is None else int(float(opts.expires) * 1000),
        )


def _body(call: Call, codec: Codec, content_type: str, message: p.Message) -> bytes:
    body, signature = codec.encode({"args": list(call.args), "kwargs": call.kwargs}, content_type)
    if signature is not None:
        message.signature = signature
    return body


def _relative(opts: SendOptions) -> SendOptions:
    return msgspec.structs.replace(opts, countdown=None, expires=None)
