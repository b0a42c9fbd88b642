"""Example tasks that ``celeriac dev`` loads by default (``-A examples``).

Try them through the gateway::

    curl -X POST localhost:8000/tasks/examples.add -H 'content-type: application/json' \\
         -d '{"args": [2, 3]}'
"""

from __future__ import annotations

import time
from typing import Any

from sdk import App

app = App("examples")


@app.task
def add(x: int, y: int) -> int:
    """Return x + y."""
    return x + y


@app.task
def mul(x: int, y: int) -> int:
    """Return x * y."""
    return x * y


@app.task
def fail(message: str = "boom") -> None:
    """Always raise ValueError(message): shows how a failure looks."""
    raise ValueError(message)


@app.task
def sleep(seconds: float) -> float:
    """Sleep for ``seconds`` and return it: a stand-in for slow work."""
    time.sleep(seconds)
    return seconds


@app.task
def echo(value: Any) -> Any:
    """Return ``value`` unchanged."""
    return value


__all__ = ["add", "app", "echo", "fail", "mul", "sleep"]
