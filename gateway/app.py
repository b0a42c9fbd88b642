"""The ASGI application: ``create_app(settings)``, and a factory for uvicorn workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette

from gateway.catalog import Catalog
from gateway.errors import HANDLERS
from gateway.middleware import middleware
from gateway.routes import all_routes
from gateway.state import Deps
from gateway.waiters import WaitHub
from sdk.broker import AsyncBroker, Limits
from sdk.config import Settings
from sdk.errors import ConfigurationError
from sdk.keys import Keys
from sdk.serializers import Codec
from sdk.signing import Signer


def redis_client(url: str) -> aredis.Redis:
    """A lazily connecting client that fails fast while Redis is down (one quick retry
    covers a pooled connection that went stale across a Redis restart)."""
    return aredis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, retry=Retry(NoBackoff(), 1)
    )


def build_deps(settings: Settings, client: aredis.Redis) -> Deps:
    keys = Keys(settings.prefix)
    limits = Limits(history=settings.history_size, result_ttl=settings.result_expires)
    signer = Signer(settings.signing_key) if settings.signing_key else None
    return Deps(
        settings=settings,
        redis=client,
        broker=AsyncBroker(client, keys, limits),
        codec=Codec(signer),
        catalog=Catalog(client, keys),
        hub=WaitHub(client, keys),
    )


def create_app(settings: Settings) -> Starlette:
    if not settings.redis_url:
        raise ConfigurationError("the gateway needs a Redis URL (CELERIAC_REDIS_URL)")
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # Nothing here talks to Redis: the gateway starts (and /readyz says 503) without it.
        d = build_deps(settings, redis_client(redis_url))
        d.hub.start()
        try:
            yield {"deps": d}
        finally:
            await d.hub.stop()
            await d.redis.aclose()

    return Starlette(
        routes=all_routes(),
        middleware=middleware(settings),
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )


def create_app_from_env() -> Starlette:
    """For ``uvicorn --factory`` (the CLI's multi-worker mode): settings from CELERIAC_*."""
    return create_app(Settings().with_env())
