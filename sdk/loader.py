"""``-A module[:attr]``: import the user's module and find its App (worker, scheduler),
the way Celery's ``-A`` does."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from sdk.app import App
from sdk.errors import ConfigurationError


def load_app(spec: str) -> App:
    """The App ``spec`` names, with its ``include=`` modules imported."""
    app = _find(spec)
    app.import_included()
    return app


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {name!r}: {exc}") from exc


def _find(spec: str) -> App:
    """As Celery: ``module:attr``; ``module.attr``; a module's ``app``, else its
    ``celery``, else (a package) its ``celery`` submodule's App, else its one App."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as Celery does: `-A proj` finds ./proj
    module_name, colon, attr = spec.partition(":")
    if colon:
        return _named(spec, getattr(_import(module_name), attr, None))
    try:
        module = importlib.import_module(spec)
    except ImportError as exc:
        parent, dot, attr = spec.rpartition(".")
        if not dot:
            raise ConfigurationError(f"cannot import {spec!r}: {exc}") from exc
        return _named(spec, getattr(_import(parent), attr, None))
    return _in_module(spec, module)


def _named(spec: str, found: object) -> App:
    if not isinstance(found, App):
        raise ConfigurationError(f"{spec!r} is not a celeriac App")
    return found


def _in_module(spec: str, module: ModuleType) -> App:
    for attr in ("app", "celery"):
        found = getattr(module, attr, None)
        if isinstance(found, App):
            return found
    if hasattr(module, "__path__") and importlib.util.find_spec(f"{spec}.celery"):
        return _in_module(f"{spec}.celery", _import(f"{spec}.celery"))  # as Celery looks
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) != 1:
        found = "no App" if not apps else f"{len(apps)} Apps"
        raise ConfigurationError(f"{spec!r} has {found}; name one as {spec}:attr")
    return apps[0]
