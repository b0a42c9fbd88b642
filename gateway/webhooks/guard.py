"""What the gateway checks of a callback URL at submission (the guard: sdk/outbound.py)."""

from __future__ import annotations

from sdk.errors import InvalidCallback
from sdk.outbound import AllowList, Target, check


class Policy:
    """What the gateway checks of a callback URL at submission."""

    def __init__(self, secret: str | None, allow: str) -> None:
        self.enabled = bool(secret)
        self.allow = AllowList.parse(allow)

    async def check(self, raw: str) -> Target:
        if not self.enabled:
            raise InvalidCallback(
                "this gateway has no CELERIAC_WEBHOOK_SECRET, so it sends no webhooks",
                details={"url": raw},
            )
        return await check(raw, self.allow)
