"""The ASGI application: ``create_app(settings)``, and a factory for uvicorn workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette

from gateway.catalog import Catalog
from gateway.errors import HANDLERS
from gateway.middleware import middleware
from gateway.routes import all_routes
from gateway.scheduler import Admin, Static
from gateway.scheduler.service import running
from gateway.state import Deps
from gateway.waiters import WaitHub
from gateway.webhooks import service as webhooks
from gateway.webhooks.guard import Policy
from sdk.broker import AsyncBroker
from sdk.clients import AsyncClient, async_client
from sdk.config import Settings
from sdk.errors import ConfigurationError
from sdk.idempotency import IdempotentSubmitter
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits
from sdk.serializers import Codec
from sdk.signing import Signer

POOL_SIZE = 200  # Redis connections per gateway process (per node on a Cluster)
POOL_WAIT = 10.0


def redis_client(url: str) -> AsyncClient:
    """A lazily connecting client that fails fast while Redis is down (one quick retry
    covers a pooled connection that went stale across a Redis restart).

    On one server the pool blocks (up to ``POOL_WAIT`` s) for a free connection rather
    than failing: a burst of thousands of long-polls woken at once must queue for
    connections, not 503. A Cluster's per-node pools cannot block (sdk/clients.py).
    """
    return async_client(
        url,
        max_connections=POOL_SIZE,
        wait=POOL_WAIT,
        socket_connect_timeout=2,
        socket_timeout=10,
        retry=Retry(NoBackoff(), 1),
    )


def build_deps(settings: Settings, client: AsyncClient) -> Deps:
    keys = Keys.from_settings(settings)
    limits = Limits.from_settings(settings)
    signer = Signer(settings.signing_key) if settings.signing_key else None
    broker, catalog = AsyncBroker(client, keys, limits), Catalog(client, keys)
    return Deps(
        settings=settings,
        redis=client,
        broker=broker,
        codec=Codec(signer),
        catalog=catalog,
        hub=WaitHub(client, keys),
        schedules=Admin.over(broker, catalog, settings),
        callbacks=Policy(settings.webhook_secret, settings.webhook_allow),
        idempotent=IdempotentSubmitter(broker.scripts, keys, limits),
    )


def create_app(settings: Settings, scheduler: Static | None = None) -> Starlette:
    """The gateway; with ``scheduler`` (``--with-scheduler``) it also runs a scheduler,
    which leads or stands by like any other (docs/scheduling.md)."""
    if not settings.redis_url:
        raise ConfigurationError("the gateway needs a Redis URL (CELERIAC_REDIS_URL)")
    webhooks.check(settings)
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # Nothing here talks to Redis: the gateway starts (and /readyz says 503) without it.
        d = build_deps(settings, redis_client(redis_url))
        d.hub.start()
        try:
            async with AsyncExitStack() as stack:
                if scheduler is not None:
                    await stack.enter_async_context(running(d.redis, settings, scheduler))
                await stack.enter_async_context(
                    webhooks.running(d.redis, d.broker.keys, d.codec, settings)
                )
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
