"""The message envelope of one run and its encoding in a stream entry (docs/protocol.md)."""

from __future__ import annotations

import msgspec

from sdk.errors import ProtocolError, UnknownProtocolVersion

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
    chain: list[Link] | None = None  # the links that run after this one (sdk/canvas.py)
    chord: ChordRef | None = None  # this run is a chord's header member
    chord_body: bool = False  # this run is a chord's body: its header's results go first
    link: list[Link] | None = None  # runs given its result once it succeeds (link=)
    link_error: list[Link] | None = None  # runs given its id if it does not (link_error=)
    v: int = PROTOCOL_VERSION


class ChordRef(msgspec.Struct, kw_only=True):
    """A chord header member's place: which body it counts towards (the body's run id
    names the chord), where that body is queued, and its own index in the header."""

    body_id: str
    body_task: str
    body_queue: str
    body_priority: int
    index: int


class Link(msgspec.Struct, kw_only=True):
    """A later link of a chain, carried in the envelope of the link before it.

    Built whole by the producer, with its id already given (of the first link's
    partition, so the finish call that submits it stays in one Cluster slot). The worker
    that finishes the link before submits it: ``args`` in ``body`` get that link's result
    in front unless ``immutable``; ``countdown_ms`` and ``expires_ms`` count from then.

    With ``header``, the link is a chord (a group in a chain): that worker opens it and
    submits the header's runs, each given the result; this link's run is the chord's
    body, queued once they have all ended. A header run that is a chain carries its later
    links in its own envelope, and its last link says which chord it counts in.
    """

    message: Message
    body: bytes
    immutable: bool = False
    countdown_ms: int | None = None
    expires_ms: int | None = None
    header: list[Link] | None = None  # a chord: its header runs first (docs/canvas.md)


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
