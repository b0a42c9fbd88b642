"""The wire protocol: the message envelope, its stream encoding, and the run record.

One definition, used by the SDK, the gateway and the executors alike; docs/protocol.md
describes the same thing for implementers in other languages.
"""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, datetime

import msgspec

from sdk.errors import InvalidRequest, ProtocolError, UnknownProtocolVersion

PROTOCOL_VERSION = 1
JSON = "application/json"


class Message(msgspec.Struct, kw_only=True):
    """The envelope of one run, stored as the ``env`` field of a stream entry.

    Arguments travel beside it in the ``body`` field, encoded as ``content_type``; the
    envelope itself is always JSON, with every field present (null when unset), so any
    consumer can route a run without decoding the body or knowing our defaults.
    """

    id: str
    task: str
    queue: str = "default"
    priority: int = 5
    content_type: str = JSON
    created_at: int = 0  # ms since the epoch
    eta: int | None = None  # ms since the epoch; None runs now
    expires: int | None = None  # ms since the epoch
    retries: int = 0
    max_retries: int | None = None
    parent_id: str | None = None
    root_id: str | None = None
    callback_url: str | None = None
    trace: str | None = None  # W3C traceparent of the submitter
    signature: str | None = None  # hex HMAC-SHA256 of body (required for pickle)
    ignore_result: bool = False
    v: int = PROTOCOL_VERSION


class _Versioned(msgspec.Struct):
    v: int


_encode_env = msgspec.json.Encoder().encode
_decode_env = msgspec.json.Decoder(Message).decode
_decode_version = msgspec.json.Decoder(_Versioned).decode


def encode_envelope(message: Message) -> bytes:
    return _encode_env(message)


def decode_envelope(raw: bytes) -> Message:
    """The envelope; ``UnknownProtocolVersion`` when it is of another version (whose
    fields may not even fit ours), ``ProtocolError`` when it is not an envelope at all."""
    try:
        message = _decode_env(raw)
    except msgspec.DecodeError as exc:
        try:
            version = _decode_version(raw).v
        except msgspec.DecodeError:
            version = PROTOCOL_VERSION
        if version != PROTOCOL_VERSION:
            raise UnknownProtocolVersion(f"envelope of protocol version {version}") from exc
        raise ProtocolError(f"bad envelope: {exc}") from exc
    if message.v != PROTOCOL_VERSION:
        raise UnknownProtocolVersion(f"envelope of protocol version {message.v}")
    return message


# -- run record (a Redis hash per run) ---------------------------------------------------------
# Field names of the hash at Keys.run(id). Values are bytes; numbers are decimal strings.
F_TASK = "task"
F_STATE = "state"
F_QUEUE = "queue"
F_CREATED = "created_at"
F_STARTED = "started_at"
F_FINISHED = "finished_at"
F_RUNTIME = "runtime_ms"
F_ATTEMPTS = "attempts"
F_WORKER = "worker"
F_PARENT = "parent_id"
F_ROOT = "root_id"
F_RESULT = "result"  # bytes in F_RESULT_CT
F_RESULT_CT = "result_ct"
F_RESULT_SIG = "result_sig"  # HMAC of F_RESULT when it is a pickle
F_ERROR = "error"  # JSON {"type", "message", "traceback"}
F_EXC = "exc"  # signed cloudpickle of the exception, when a signing key is set
F_EXC_SIG = "exc_sig"
F_META = "meta"  # JSON, from update_state(meta=...)
F_ENV = "env"  # the envelope, kept so a run can be retried or requeued
F_BODY = "body"
F_CALLBACK = "callback_url"
F_WEBHOOK = "webhook"  # JSON {"url", "state", "attempts"}, kept by the webhook dispatch


# -- ids and time --------------------------------------------------------------------------


def new_id() -> str:
    """A UUIDv7: time-ordered, so ids sort by submission time."""
    raw = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an RFC 3339 UTC string (``...T15:04:05.123Z``)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return f"{_utc_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=1024)
def _utc_second(seconds: int) -> str:
    # Cached: a run's times, and the runs answered together, mostly share their second;
    # formatting was a tenth of the gateway's CPU on a burst of long-poll answers.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def parse_time(value: str) -> int:
    """An ISO 8601 / RFC 3339 time as ms since the epoch; naive times are UTC."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"not an ISO 8601 time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
