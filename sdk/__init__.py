"""Celeriac's SDK: what producers and task modules import.

Names are imported on first use (PEP 562), so ``import sdk.cli`` stays light: a worker
can prepare its process (gevent patches the standard library) before Redis is imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdk import states
    from sdk.app import App
    from sdk.canvas import Chain, Chord, Group, Signature, chain, chord, group, signature
    from sdk.celery_app import Celery
    from sdk.current import current_app, shared_task
    from sdk.errors import CeleriacError, Reject, Retry, TaskError
    from sdk.result import AsyncResult, GroupResult
    from sdk.schedules import crontab
    from sdk.task import Task

_WHERE = {
    "App": "sdk.app",
    "AsyncResult": "sdk.result",
    "Chain": "sdk.canvas",
    "Chord": "sdk.canvas",
    "Group": "sdk.canvas",
    "GroupResult": "sdk.result",
    "chord": "sdk.canvas",
    "group": "sdk.canvas",
    "Signature": "sdk.canvas",
    "chain": "sdk.canvas",
    "signature": "sdk.canvas",
    "Celery": "sdk.celery_app",
    "current_app": "sdk.current",
    "shared_task": "sdk.current",
    "CeleriacError": "sdk.errors",
    "Reject": "sdk.errors",
    "Retry": "sdk.errors",
    "TaskError": "sdk.errors",
    "Task": "sdk.task",
    "crontab": "sdk.schedules",
}

__all__ = [
    "App",
    "AsyncResult",
    "CeleriacError",
    "Celery",
    "Chain",
    "Chord",
    "Group",
    "GroupResult",
    "Reject",
    "Retry",
    "Signature",
    "Task",
    "TaskError",
    "chain",
    "chord",
    "crontab",
    "current_app",
    "group",
    "shared_task",
    "signature",
    "states",
]


def __getattr__(name: str) -> Any:
    if name == "states":
        return import_module("sdk.states")
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sdk' has no attribute {name!r}")
