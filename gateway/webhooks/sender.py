"""One webhook attempt: sign per Standard Webhooks, POST to the checked address, classify.

Only a 2xx answer is a delivery. 410 Gone disables the delivery. A 3xx is a failure and is
never followed (a redirect could lead anywhere, past the SSRF guard). Every other answer,
and every transport error, is a failure to retry; 429 and 503 may carry ``Retry-After``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from sdk.outbound import Target, retry_after
from sdk.protocol import now_ms, rfc3339

USER_AGENT = "celeriac-webhooks/1"
DELIVERED, DISABLED, RETRY = "delivered", "disabled", "retry"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt did: shown under the run as ``webhook.attempts[]``."""

    at: str  # RFC 3339
    status: int | None
    latency_ms: int
    error: str | None
    outcome: str  # delivered, disabled or retry
    retry_after: float | None = None

    def public(self) -> dict[str, object]:
        return {
            "at": self.at,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


def classify(response: httpx.Response) -> tuple[str, str | None, float | None]:
    status = response.status_code
    if 200 <= status < 300:
        return DELIVERED, None, None
    if status == 410:
        return DISABLED, "410 Gone: delivery disabled", None
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        return RETRY, f"redirect to {where!r} not followed", None
    wait = retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    return RETRY, f"HTTP {status}", wait


class Sender:
    def __init__(self, secret: str, timeout: float) -> None:
        self._signer = Webhook(secret)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def headers(self, msg_id: str, payload: bytes, target: Target) -> dict[str, str]:
        """Standard Webhooks headers: a stable id, a fresh timestamp, a v1 signature."""
        now = datetime.now(UTC)
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": target.host_header,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(msg_id, now, payload.decode()),
        }

    async def post(self, target: Target, msg_id: str, payload: bytes) -> Attempt:
        at = rfc3339(now_ms()) or ""
        started = time.perf_counter()
        try:
            response = await self._client.post(
                target.connect_url(),
                content=payload,
                headers=self.headers(msg_id, payload, target),
                extensions=target.extensions,
            )
        except httpx.HTTPError as exc:
            latency = int((time.perf_counter() - started) * 1000)
            return Attempt(at, None, latency, f"{type(exc).__name__}: {exc}"[:500], RETRY)
        latency = int((time.perf_counter() - started) * 1000)
        outcome, error, wait = classify(response)
        return Attempt(at, response.status_code, latency, error, outcome, wait)
