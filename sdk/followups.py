"""What an outcome brings about besides itself: the next link of a chain, a chord's
header and its count, callbacks, the later links that end with a failure
(docs/canvas.md). Built here, without I/O, and sent in the ``finish.lua`` call that
stores the outcome: by a worker, and by a revoke that ends a queued run.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from sdk import protocol as p
from sdk import states
from sdk.errors import CeleriacError, SerializationError
from sdk.exceptions_wire import describe
from sdk.middleware import Outcome
from sdk.protocol import plans
from sdk.protocol.keys import Keys
from sdk.protocol.plans import ChordMember, Follow, Limits, Opening, ScriptCall, Submission
from sdk.serializers import Codec

log = logging.getLogger("celeriac.followups")


def follows(m: p.Message) -> bool:
    return bool(m.chain or m.chord or m.link or m.link_error)


def follow(message: p.Message, outcome: Outcome, codec: Codec) -> Follow:
    """What the outcome of a chain link, a chord member or a run with callbacks brings
    about, in its finish call (docs/canvas.md)."""
    ref = _counts_in(message, outcome.state)
    error = b"" if ref is None else _member_error(message, ref, outcome, codec)
    try:
        if outcome.state == states.SUCCESS:
            value = outcome.value
            opens, runs = next_step(message, value, codec) if message.chain else ([], [])
            runs += [_run_of(message, link, value, codec) for link in message.link or []]
            return Follow(open=opens, submit=runs, chord=_member(ref, error))
        errbacks = [_run_of(message, link, message.id, codec) for link in message.link_error or []]
    except CeleriacError as exc:  # a result that cannot be an argument of what follows
        log.error("run %s: what follows it cannot start: %s", message.id, exc)
        cause = describe(exc)
        if message.chord is None:  # a header chain's link: the chain ends, failing its chord
            ref = _counts_in(message, states.FAILURE)
            error = b"" if ref is None else _chord_error(message, ref, states.FAILURE, cause, codec)
        fields = {p.F_ERROR: codec.encode(cause, "json")[0]}
        return Follow(end=later(message), end_fields=fields, chord=_member(ref, error))
    # the later links end in its state (a dead run's followers fail: only the run
    # itself goes to the dead letters)
    state = states.FAILURE if outcome.state == states.DEAD else outcome.state
    fields = {k: v for k, v in outcome.fields.items() if k in _ERROR_FIELDS}
    return Follow(
        submit=errbacks,
        end=later(message),
        end_state=state,
        end_fields=fields,
        chord=_member(ref, error),
    )


def later(message: p.Message) -> list[p.Message]:
    """Every run after ``message`` in its chain: the later links, and a chord's header
    runs (with their own later links)."""
    runs: list[p.Message] = []
    for link in message.chain or []:
        runs.append(link.message)
        for member in link.header or []:
            runs += [member.message, *later(member.message)]
    return runs


def _counts_in(message: p.Message, state: str) -> p.ChordRef | None:
    """The chord whose count this outcome settles: the run's own as a header run; a
    failing link's of a header chain (the later links never run, so never count)."""
    if message.chord is not None or state == states.SUCCESS or not message.chain:
        return message.chord
    return message.chain[-1].message.chord


def _member(ref: p.ChordRef | None, error: bytes) -> ChordMember | None:
    if ref is None:
        return None
    body = p.Message(
        id=ref.body_id, task=ref.body_task, queue=ref.body_queue, priority=ref.body_priority
    )
    return ChordMember(body=body, index=ref.index, error=error)


def _member_error(message: p.Message, ref: p.ChordRef, outcome: Outcome, codec: Codec) -> bytes:
    """The chord's error should this header run not succeed ("" when it did): it names
    the run."""
    if outcome.state == states.SUCCESS:
        return b""
    raw = outcome.fields.get(p.F_ERROR)
    return _chord_error(message, ref, outcome.state, msgspec.json.decode(raw) if raw else {}, codec)


def _chord_error(
    message: p.Message, ref: p.ChordRef, state: str, cause: dict[str, Any], codec: Codec
) -> bytes:
    what = f"{cause.get('type', state)}: {cause.get('message', '')}".rstrip(": ")
    error = {
        "type": "ChordError",
        "message": f"chord member {ref.index} ({message.task} {message.id}) ended {state}: {what}",
        "traceback": cause.get("traceback"),
    }
    return codec.encode(error, "json")[0]


def first_argument(
    m: p.Message, body: bytes, value: object, codec: Codec
) -> tuple[bytes, str | None]:
    """``body`` with ``value`` in front of its args, encoded (and signed) again."""
    payload = codec.decode(body, m.content_type, m.signature)
    if not isinstance(payload, dict):
        raise SerializationError(f"run {m.id}: body is not {{'args', 'kwargs'}}")
    args = [value, *payload.get("args", ())]
    return codec.encode({"args": args, "kwargs": payload.get("kwargs", {})}, m.content_type)


_ERROR_FIELDS = frozenset({p.F_ERROR, p.F_EXC, p.F_EXC_SIG})


def next_step(
    message: p.Message, value: object, codec: Codec
) -> tuple[list[Opening], list[Submission]]:
    """The first link of ``message``'s chain as a run, child of ``message``, carrying the
    rest of the chain; of a chord, the chord to open (its body carries the rest) and its
    header's runs, each given ``value``."""
    step, *rest = message.chain or []
    if step.header is None:
        return [], [_run_of(message, step, value, codec, rest=rest)]
    body = _run_of(message, step, None, codec, rest=rest).message
    header = [
        _run_of(message, member, value, codec, rest=member.message.chain) for member in step.header
    ]
    opening = Opening(Submission(body, step.body), len(header), body.content_type)
    return [opening], header


def _run_of(
    message: p.Message, link: p.Link, value: object, codec: Codec, rest: list[p.Link] | None = None
) -> Submission:
    """``link`` as a run, child of ``message``: ``value`` in front of its args unless it
    is immutable; its countdown and expiry counted from now."""
    m = link.message
    body, signature = link.body, m.signature
    if not link.immutable and link.header is None:  # a chord's body gets the header's results
        body, signature = first_argument(m, body, value, codec)
    now = p.now_ms()
    submitted = msgspec.structs.replace(
        m,
        created_at=now,
        eta=None if not link.countdown_ms else now + link.countdown_ms,
        expires=None if link.expires_ms is None else now + link.expires_ms,
        parent_id=message.id,
        root_id=message.root_id or message.id,
        signature=signature,
        chain=rest or None,
    )
    return Submission(submitted, body)


def revoked(keys: Keys, limits: Limits, message: p.Message, codec: Codec) -> ScriptCall[bool]:
    """The finish call that ends a queued run as REVOKED with its follow-ups, for
    ``revoke.lua`` to make should the run indeed never start."""
    stream = keys.stream(keys.partition(message.id), message.queue, message.priority)
    then = follow(message, Outcome(states.REVOKED), codec)
    return plans.finish(keys, limits, message, stream, "", states.REVOKED, None, {}, then)


__all__ = ["first_argument", "follow", "follows", "revoked"]
