"""Payload serializers: a small Protocol, a name -> class map and one resolver.

``"json"``, ``"msgpack"`` and ``"pickle"`` (and their content types) are interpreted here
and nowhere else. Third parties add serializers through the ``celeriac.serializers``
entry-point group, read by the same resolver.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

import cloudpickle
import msgspec

from sdk.errors import SerializationError, SignatureError, UnsupportedContentType
from sdk.signing import Signer

JSON = "application/json"
MSGPACK = "application/msgpack"
PICKLE = "application/x-cloudpickle"


class Serializer(Protocol):
    content_type: ClassVar[str]
    #: True when decoding untrusted bytes could run code: such payloads must be signed.
    requires_signature: ClassVar[bool]

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    content_type: ClassVar[str] = JSON
    requires_signature: ClassVar[bool] = False

    def __init__(self) -> None:
        self._enc = msgspec.json.Encoder()
        self._dec = msgspec.json.Decoder()

    def dumps(self, obj: Any) -> bytes:
        return self._enc.encode(obj)

    def loads(self, data: bytes) -> Any:
        return self._dec.decode(data)


class MsgpackSerializer:
    content_type: ClassVar[str] = MSGPACK
    requires_signature: ClassVar[bool] = False

    def __init__(self) -> None:
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder()

    def dumps(self, obj: Any) -> bytes:
        return self._enc.encode(obj)

    def loads(self, data: bytes) -> Any:
        return self._dec.decode(data)


class PickleSerializer:
    content_type: ClassVar[str] = PICKLE
    requires_signature: ClassVar[bool] = True

    def dumps(self, obj: Any) -> bytes:
        return bytes(cloudpickle.dumps(obj))

    def loads(self, data: bytes) -> Any:
        return cloudpickle.loads(data)


_BUILTIN: dict[str, type[Serializer]] = {
    JSON: JsonSerializer,
    MSGPACK: MsgpackSerializer,
    PICKLE: PickleSerializer,
}
ALIASES = {
    "json": JSON,
    "msgpack": MSGPACK,
    "application/x-msgpack": MSGPACK,
    "application/vnd.msgpack": MSGPACK,
    "pickle": PICKLE,
    "cloudpickle": PICKLE,
}


def content_type_of(name: str) -> str:
    """The canonical content type for a serializer name or content type."""
    base = name.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


@dataclass
class Codec:
    """Encodes and decodes payloads by content type, enforcing signatures where needed."""

    signer: Signer | None = None

    def __post_init__(self) -> None:
        self._serializers: dict[str, Serializer] = {ct: cls() for ct, cls in _BUILTIN.items()}
        for ep in entry_points(group="celeriac.serializers"):
            cls = ep.load()
            self._serializers[cls.content_type] = cls()

    def supports(self, content_type: str) -> bool:
        return content_type_of(content_type) in self._serializers

    def serializer(self, content_type: str) -> Serializer:
        found = self._serializers.get(content_type)  # mostly canonical already: once per run
        if found is None:
            found = self._serializers.get(content_type_of(content_type))
        if found is None:
            raise UnsupportedContentType(f"unsupported content type {content_type!r}")
        return found

    def encode(self, obj: Any, content_type: str) -> tuple[bytes, str | None]:
        """Serialize ``obj``; returns the bytes and their signature (None if not needed)."""
        ser = self.serializer(content_type)
        try:
            data = ser.dumps(obj)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            raise SerializationError(f"cannot encode as {ser.content_type}: {exc}") from exc
        if not ser.requires_signature:
            return data, None
        if self.signer is None:
            raise SignatureError(f"{ser.content_type} needs CELERIAC_SIGNING_KEY to be set")
        return data, self.signer.sign(data)

    def verify(self, data: bytes, content_type: str, signature: str | None) -> None:
        """Refuse a payload whose serializer needs a signature it does not carry."""
        self._verify(self.serializer(content_type), data, signature)

    def _verify(self, ser: Serializer, data: bytes, signature: str | None) -> None:
        if not ser.requires_signature:
            return
        if self.signer is None:
            raise SignatureError("signed payloads need CELERIAC_SIGNING_KEY to be set")
        self.signer.verify(data, signature)

    def decode(self, data: bytes, content_type: str, signature: str | None = None) -> Any:
        """Deserialize ``data``; a pickle is verified before a single byte is unpickled."""
        ser = self.serializer(content_type)
        self._verify(ser, data, signature)
        try:
            return ser.loads(data)
        except Exception as exc:  # a bad payload must never escape as anything else
            raise SerializationError(f"cannot decode {content_type}: {exc}") from exc
