"""The webhook dispatcher's lifetime inside the gateway's lifespan."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from standardwebhooks import Webhook

from gateway.webhooks.deliveries import Deliveries
from gateway.webhooks.dispatch import Dispatcher
from sdk.clients import AsyncClient
from sdk.config import Settings
from sdk.errors import ConfigurationError
from sdk.protocol.keys import Keys
from sdk.serializers import Codec

log = logging.getLogger(__name__)
DAY = 86_400
SECRET_BYTES = (24, 64)  # the key length Standard Webhooks asks for


def check(settings: Settings) -> None:
    """Refuse to start with a secret Standard Webhooks cannot use, or a rate at which no
    attempt would ever start."""
    if settings.webhook_rate <= 0:
        raise ConfigurationError(
            f"CELERIAC_WEBHOOK_RATE must be above 0 attempts a second, not {settings.webhook_rate}"
        )
    if settings.webhook_secret:
        check_secret(settings.webhook_secret)


def check_secret(secret: str) -> None:
    """``whsec_`` and the base64 of 24 to 64 random bytes, as Standard Webhooks asks; the
    library itself would sign with a key of two bytes (``whsec_bad``)."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        Webhook(secret)
    except Exception as exc:  # binascii.Error, or the library's own errors
        raise ConfigurationError(
            f"CELERIAC_WEBHOOK_SECRET is not a whsec_<base64> secret: {exc}"
        ) from None
    if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        raise ConfigurationError(
            f"CELERIAC_WEBHOOK_SECRET must be whsec_ and the base64 of {SECRET_BYTES[0]} to "
            f"{SECRET_BYTES[1]} random bytes, not of {len(key)} (docs/webhooks.md shows how "
            "to make one)"
        )


def build(client: AsyncClient, keys: Keys, codec: Codec, settings: Settings) -> Dispatcher:
    ttl = int(settings.webhook_max_span) + DAY  # a delivery outlives its last attempt
    return Dispatcher(Deliveries(client, keys, codec, ttl), settings)


@asynccontextmanager
async def running(
    client: AsyncClient, keys: Keys, codec: Codec, settings: Settings
) -> AsyncIterator[Dispatcher | None]:
    """Deliver webhooks while the block runs; without a secret this gateway sends none
    (and refuses callback URLs), leaving queued deliveries to gateways that have one."""
    if not settings.webhook_secret:
        log.info("no CELERIAC_WEBHOOK_SECRET: this gateway sends no webhooks")
        yield None
        return
    dispatcher = build(client, keys, codec, settings)
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
