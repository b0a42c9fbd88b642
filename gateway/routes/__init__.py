"""HTTP routes, one module per resource."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.openapi import routes as openapi_routes
from gateway.routes import health, runs, tasks


def all_routes() -> list[BaseRoute]:
    return [*tasks.routes, *runs.routes, *health.routes, *openapi_routes]
