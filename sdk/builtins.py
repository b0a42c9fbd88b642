"""Tasks every worker runs without an App registering them: Celery's ``map`` and
``starmap``, the runs behind ``task.map(items)``, ``task.starmap(items)`` and
``task.chunks(items, n)`` (sdk/canvas.py), which call the named task once per item, in
one run, and return the list of results; and ``collect``, the body of a group that a
chain goes on after (or ends with): it returns the list of the group's results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk.errors import TaskNotFound

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.task import Task

MAP = "celeriac.map"
STARMAP = "celeriac.starmap"
COLLECT = "celeriac.collect"
NAMES = frozenset({MAP, STARMAP, COLLECT})


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

    elif name == COLLECT:

        def each(results: list[Any]) -> list[Any]:  # type: ignore[misc]  # one of three
            return results

    else:
        return None
    from sdk.task import Task  # here: sdk.task imports the canvas, which imports this

    return Task(app, each, name, bind=False, options={})


def _task(app: App, name: str) -> Task[Any, Any]:
    task = app.tasks.get(name)
    if task is None:
        raise TaskNotFound(f"task {name!r} is not registered on this worker")
    return task


__all__ = ["COLLECT", "MAP", "NAMES", "STARMAP", "builtin"]
