"""What a fetched stream entry means, for the sync and the async consumer alike: its
message, what a start's verdict asks for, and the script calls that store an outcome.

Nothing here does I/O; each consumer sends the calls its own way.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from sdk import followups, states
from sdk import protocol as p
from sdk.errors import ProtocolError, SerializationError, UnknownProtocolVersion
from sdk.middleware import Outcome
from sdk.protocol import plans
from sdk.protocol.keys import Keys
from sdk.protocol.plans import (
    ChordResults,
    Limits,
    ScriptCall,
    Start,
    StreamEntry,
)
from sdk.serializers import Codec

log = logging.getLogger("celeriac.consumer")

#: ``"ack"``: drop the entry (malformed); ``"leave"``: leave it pending to another worker.
Unreadable = Literal["ack", "leave"]


def read(entry: StreamEntry) -> tuple[p.Message, bytes] | Unreadable:
    """The entry's message and body, or what to do with an entry that has none."""
    try:
        return p.decode_envelope(entry.fields[b"env"]), entry.fields.get(b"body", b"")
    except UnknownProtocolVersion as exc:
        # For a worker of another version (a rolling upgrade): left pending, so one
        # that speaks it takes it over once this one has gone (docs/reliability.md).
        log.warning("left entry %s on %s to another worker: %s", entry.id, entry.stream, exc)
        return "leave"
    except (KeyError, ProtocolError) as exc:
        log.error("dropping malformed entry %s on %s: %s", entry.id, entry.stream, exc)
        return "ack"


def expired(message: p.Message) -> bool:
    return message.expires is not None and p.now_ms() > message.expires


def settle_start(
    start: Start, message: p.Message, codec: Codec, max_deliveries: int
) -> Outcome | Literal["run", "ack"]:
    """What a start's verdict asks for: run it, only acknowledge it (it had finished), or
    store this outcome without running it."""
    if start.verdict == "DONE":
        return "ack"
    if start.verdict == "REVOKE":
        return Outcome(states.REVOKED)
    if start.verdict == "KILLED":
        return Outcome(states.FAILURE, {p.F_ERROR: start.killed})
    if start.verdict == "DEAD":
        return dead(message, start.deliveries, codec, max_deliveries)
    return "run"


def dead(message: p.Message, deliveries: int, codec: Codec, max_deliveries: int) -> Outcome:
    log.error(
        "run %s (%s) is dead: %d deliveries never finished", message.id, message.task, deliveries
    )
    error = {
        "type": "DeliveryLimitExceeded",
        "message": f"delivered {deliveries} times without finishing "
        f"(max_deliveries={max_deliveries}): its worker died each time",
        "traceback": None,
    }
    return Outcome(states.DEAD, {p.F_ERROR: codec.encode(error, "json")[0]})


def finish(
    keys: Keys,
    limits: Limits,
    entry: StreamEntry,
    message: p.Message,
    outcome: Outcome,
    codec: Codec,
) -> ScriptCall[bool]:
    """The call that stores ``outcome`` and acknowledges the entry, and, for a link of a
    chain, submits the next link or ends the rest with it."""
    return plans.finish(
        keys,
        limits,
        message,
        entry.stream,
        entry.id,
        outcome.state,
        outcome.runtime_ms,
        outcome.fields,
        followups.follow(message, outcome, codec) if followups.follows(message) else None,
    )


def chord_failed(header: ChordResults | None) -> Outcome | None:
    """A chord body's outcome when a header run did not succeed: the chord's error."""
    if header is None or not header.error:
        return None
    return Outcome(states.FAILURE, {p.F_ERROR: header.error})


def with_header_results(
    message: p.Message, body: bytes, header: ChordResults | None, codec: Codec
) -> tuple[p.Message, bytes]:
    """A chord body's run with the list of its header's results in front of its args
    (the envelope changes too: a pickled body is signed again)."""
    if header is None:
        raise SerializationError(f"chord {message.id}: its header's results are gone")
    results = [codec.decode(r, header.content_type) if r else None for r in header.results]
    body, signature = followups.first_argument(message, body, results, codec)
    return msgspec.structs.replace(message, signature=signature), body


def retry(
    keys: Keys,
    limits: Limits,
    entry: StreamEntry,
    message: p.Message,
    body: bytes,
    outcome: Outcome,
) -> ScriptCall[bool]:
    """The call that schedules the next attempt (the run keeps its id) and acknowledges."""
    due = p.now_ms() + int((outcome.countdown or 0) * 1000)
    retried = msgspec.structs.replace(message, retries=message.retries + 1, eta=due)
    error = outcome.fields[p.F_ERROR]
    return plans.retry(keys, limits, retried, entry.stream, entry.id, error, body)


__all__ = [
    "Unreadable",
    "chord_failed",
    "dead",
    "expired",
    "finish",
    "read",
    "retry",
    "settle_start",
    "with_header_results",
]
