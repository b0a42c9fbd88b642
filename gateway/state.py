"""What the lifespan builds once per process and every request reaches through its state."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.catalog import Catalog
from gateway.scheduler.admin import Admin
from gateway.waiters import WaitHub
from gateway.webhooks.guard import Policy
from sdk.broker import AsyncBroker
from sdk.clients import AsyncClient
from sdk.config import Settings
from sdk.idempotency import IdempotentSubmitter
from sdk.serializers import Codec


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    redis: AsyncClient
    broker: AsyncBroker
    codec: Codec
    catalog: Catalog
    hub: WaitHub
    schedules: Admin
    callbacks: Policy  # the SSRF guard and the secret check of callback URLs
    idempotent: IdempotentSubmitter


def deps(request: Request) -> Deps:
    """The lifespan's objects, from the request's copy of the lifespan state (read from the
    scope itself: ``request.state`` would build a wrapper object on every request)."""
    found: Deps = request.scope["state"]["deps"]
    return found
