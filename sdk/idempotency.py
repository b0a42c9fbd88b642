"""Idempotent submission: the key check and the submission happen in one script.

``submit_once.lua`` runs ``submit.lua`` as a local function after looking the key up, so
a hundred concurrent requests with one key are serialized by Redis itself: the first
creates the run and remembers its answer, every later one gets that answer back. There is
no window in which a key names a run that is not queued yet (docs/results.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from sdk.errors import Conflict, IdempotencyConflict, InvalidRequest
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, Submission

MAX_KEY = 255


class Remembered(msgspec.Struct):
    """What an idempotency key stores: the request's digest and the answer given to it."""

    digest: str
    answer: dict[str, Any]


_decode = msgspec.json.Decoder(Remembered).decode


def check_key(key: str) -> str:
    if not 0 < len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidRequest(
            f"an idempotency key is 1-{MAX_KEY} printable characters", details={"max": MAX_KEY}
        )
    return key


def request_digest(*parts: bytes | str | None) -> str:
    """A digest of what makes two requests "the same" (length-prefixed, so unambiguous)."""
    h = hashlib.sha256()
    for part in parts:
        data = b"\xff" if part is None else part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


class IdempotentSubmitter:
    """Submits one run under an idempotency key. The run's id must be of the key's
    partition (``Keys.run_id_for``), so the key and the run are in one slot."""

    def __init__(self, scripts: AsyncScripts, keys: Keys, limits: Limits) -> None:
        self._scripts = scripts
        self._keys = keys
        self._limits = limits

    async def submit(
        self, sub: Submission, key: str, digest: str, answer: dict[str, Any]
    ) -> dict[str, Any] | None:
        """None when this call created the run; the first answer for a repeat of the same
        request; IdempotencyConflict for the same key with a different request."""
        remembered = msgspec.json.encode(Remembered(digest, answer))
        once = await self._scripts(
            plans.submit_once(self._keys, self._limits, sub, key, remembered)
        )
        if once.created:
            return None
        if once.remembered is None:
            raise Conflict("a run with this id already exists")
        first = _decode(once.remembered)
        if first.digest != digest:
            raise IdempotencyConflict(
                "this idempotency key was used with a different request",
                details={"idempotency_key": key, "id": first.answer.get("id")},
            )
        return first.answer
