"""What a fetched stream entry means, for the sync and the async consumer alike: its
message, what a start's verdict asks for, and the script calls that store an outcome.

Nothing here does I/O; each consumer sends the calls its own way.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from sdk import protocol as p
from sdk import states
from sdk.errors import ProtocolError, UnknownProtocolVersion
from sdk.middleware import Outcome
from sdk.protocol import plans
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, ScriptCall, Start, StreamEntry
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
    keys: Keys, limits: Limits, entry: StreamEntry, message: p.Message, outcome: Outcome
) -> ScriptCall[bool]:
    """The call that stores ``outcome`` and acknowledges the entry."""
    return plans.finish(
        keys,
        limits,
        message,
        entry.stream,
        entry.id,
        outcome.state,
        outcome.runtime_ms,
        outcome.fields,
    )


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


__all__ = ["Unreadable", "dead", "expired", "finish", "read", "retry", "settle_start"]
