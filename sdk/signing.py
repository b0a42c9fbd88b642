"""HMAC-SHA256 signatures for payloads that may only be trusted when signed (pickle)."""

from __future__ import annotations

import hashlib
import hmac

from sdk.errors import SignatureError


class Signer:
    """Signs and verifies payload bytes with one shared key."""

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("a signing key must not be empty")
        self._key = key.encode() if isinstance(key, str) else key

    def sign(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str | None) -> None:
        if not signature:
            raise SignatureError("payload is not signed")
        if not hmac.compare_digest(self.sign(data), signature.strip().lower()):
            raise SignatureError("payload signature does not verify")
