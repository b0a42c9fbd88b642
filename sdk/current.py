"""The current App and ``shared_task``, as in Celery: task modules of reusable packages
(a Django app's ``tasks.py``) declare tasks without importing the project's App.

Every App made becomes the current one (Celery's ``set_as_current=True``) and takes every
shared task declared so far; a shared task declared later is added to every App there
is. No App is ever made behind the user's back: using a shared task, or
``current_app``, before one exists is a ConfigurationError that says so.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdk.errors import ConfigurationError

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.task import Task


class _Registry:
    def __init__(self) -> None:
        self.current: App | None = None
        self.apps: weakref.WeakSet[App] = weakref.WeakSet()
        self.shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []

    def made(self, app: App, set_as_current: bool) -> None:
        """A new App: it takes the shared tasks, and is current unless told otherwise."""
        self.apps.add(app)
        if set_as_current:
            self.current = app
        for fn, options in self.shared:
            _register(app, fn, options)

    def app(self) -> App:
        if self.current is None:
            raise ConfigurationError(
                "no App yet: create one (App(...) or Celery(...)) before using a shared "
                "task or current_app; Celeriac makes no default App"
            )
        return self.current


_registry = _Registry()


def _register(app: App, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    name = options.get("name") or f"{fn.__module__}.{fn.__qualname__}"
    if name not in app.tasks:
        app.task(**options)(fn)


def app_made(app: App, set_as_current: bool = True) -> None:
    _registry.made(app, set_as_current)


class SharedTask:
    """What ``@shared_task`` gives: a stand-in for the task of that name on the current
    App (calling it runs the function here; ``.delay()`` and the rest are the task's)."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        self.name: str = options.get("name") or f"{fn.__module__}.{fn.__qualname__}"
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<shared task {self.name}>"

    def _task(self) -> Task[Any, Any]:
        return _registry.app().tasks[self.name]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._task(), attr)


def shared_task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Celery's ``@shared_task`` (bare or with the options of ``@app.task``)."""

    def declare(f: Callable[..., Any]) -> SharedTask:
        _registry.shared.append((f, options))
        for app in list(_registry.apps):
            _register(app, f, options)
        return SharedTask(f, options)

    return declare(fn) if fn is not None else declare


class _CurrentApp:
    """``current_app``: the current App, looked up on each use (Celery's proxy)."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(_registry.app(), attr)

    def __repr__(self) -> str:
        current = _registry.current
        return f"<current_app: {current!r}>" if current is not None else "<current_app: none yet>"


current_app: Any = _CurrentApp()

__all__ = ["SharedTask", "app_made", "current_app", "shared_task"]
