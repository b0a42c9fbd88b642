"""Tasks every worker runs without an App registering them: Celery's ``map`` and
``starmap``, the runs behind ``task.map(items)``, ``task.starmap(items)`` and
``task.chunks(items, n)`` (sdk/canvas.py). They call the named task once per item, in
one run, and return the list of results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk.errors import TaskNotFound

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.task import Task

MAP = "celeriac.map"
STARMAP = "celeriac.starmap"


def builtin(app: App, name: str) -> Task[Any, Any] | None:
    """The built-in task ``name`` bound to ``app``'s tasks, or None."""
    if name == MAP:

        def each(task: str, items: list[Any]) -> list[Any]:
            fn = _task(app, task)
            return [fn(item) for item in items]

    elif name == STARMAP:

        def each(task: str, items: list[Any]) -> list[Any]:
            fn = _task(app, task)
            return [fn(*item) for item in items]

    else:
        return None
    from sdk.task import Task  # here: sdk.task imports the canvas, which imports this

    return Task(app, each, name, bind=False, options={})


def _task(app: App, name: str) -> Task[Any, Any]:
    task = app.tasks.get(name)
    if task is None:
        raise TaskNotFound(f"task {name!r} is not registered on this worker")
    return task


__all__ = ["MAP", "STARMAP", "builtin"]
