"""From "call task X with these arguments and options" to a Submission on the wire.

The gateway (from an HTTP body) and the SDK (from ``apply_async``) both go through
``build_submission``, so a run looks the same whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from sdk import protocol as p
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
    calls that run after it, each given the result before it (``sdk/canvas.py``)."""

    task: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]
    options: SendOptions
    chain: tuple[Call, ...] = ()
    immutable: bool = False  # as a link of a chain: not given the result before it
    callbacks: tuple[Call, ...] = ()  # link=: runs given its result once it succeeds
    errbacks: tuple[Call, ...] = ()  # link_error=: runs given its id if it does not


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
class ChordPlan:
    """A chord, ready to send: the call that opens it, then its header's submissions."""

    open: ScriptCall[bool]
    header: list[Submission]
    body_id: str


def build_chord(
    header: Sequence[Call],
    body: Call,
    codec: Codec,
    keys: Keys,
    *,
    default_queue: str,
    content_type: str,
) -> ChordPlan:
    """A chord's runs: the body (kept in the chord's hash until its header is done) and
    the header, every run of the body's partition, each knowing its place."""

    def submission(call: Call, run_id: str | None = None) -> Submission:
        return build_submission(
            call,
            codec,
            default_queue=default_queue,
            content_type=content_type,
            run_id=run_id,
            keys=keys,
        )

    body_sub = submission(body)
    m = body_sub.message
    m.chord_body = True
    part = keys.partition(m.id)
    subs = [submission(c, keys.new_run_id(part)) for c in header]
    for i, sub in enumerate(subs):
        sub.message.chord = p.ChordRef(
            body_id=m.id, body_task=m.task, body_queue=m.queue, body_priority=m.priority, index=i
        )
    return ChordPlan(plans.chord_open(keys, body_sub, len(subs), content_type), subs, m.id)


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
        """A later run: its countdown and expiry count from when the run before ends."""
        if call.chain:
            raise InvalidRequest("a link of a chain cannot carry a chain of its own")
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
