"""HTTP routes, one module per resource."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.openapi import routes as openapi_routes
from gateway.routes import (
    dead_letters,
    events,
    health,
    history,
    runs,
    schedules,
    tasks,
    workflows,
)


def all_routes() -> list[BaseRoute]:
    return [
        *tasks.routes,
        *runs.routes,
        *workflows.routes,
        *history.routes,
        *events.routes,
        *schedules.routes,
        *dead_letters.routes,
        *health.routes,
        *openapi_routes,
    ]
