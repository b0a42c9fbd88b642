"""Idempotent submission: the key check and the submission happen in one script.

``submit_once.lua`` runs ``submit.lua`` as a local function after looking the key up, so
a hundred concurrent requests with one key are serialized by Redis itself: the first
creates the run and remembers its answer, every later one gets that answer back. There is
no window in which a key names a run that is not queued yet (docs/results.md).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import msgspec
import redis.asyncio as aredis

from sdk import scripts
from sdk.broker import Limits, Submission, plan_submit
from sdk.errors import Conflict, IdempotencyConflict, InvalidRequest
from sdk.keys import Keys

MAX_KEY = 255
SUBMIT_ONCE = scripts.function("submit") + scripts.source("submit_once")


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
    """Submits one run under an idempotency key, over a redis.asyncio client."""

    def __init__(self, client: aredis.Redis, keys: Keys, limits: Limits) -> None:
        self._keys = keys
        self._limits = limits
        self._script = client.register_script(SUBMIT_ONCE)

    async def submit(
        self, sub: Submission, key: str, digest: str, answer: dict[str, Any]
    ) -> dict[str, Any] | None:
        """None when this call created the run; the first answer for a repeat of the same
        request; IdempotencyConflict for the same key with a different request."""
        k, a = plan_submit(self._keys, self._limits, sub)
        remembered = msgspec.json.encode(Remembered(digest, answer))
        k.append(self._keys.idempotency(key))
        a += [remembered, self._limits.result_ttl]
        reply = cast(list[Any], await self._script(k, a))
        if reply[0] == 1:
            return None
        if len(reply) < 2:
            raise Conflict("a run with this id already exists")
        first = _decode(reply[1])
        if first.digest != digest:
            raise IdempotencyConflict(
                "this idempotency key was used with a different request",
                details={"idempotency_key": key, "id": first.answer.get("id")},
            )
        return first.answer
