"""``-A module[:attr]``: import the user's module and find its App (worker, scheduler)."""

from __future__ import annotations

import importlib
import os
import sys

from sdk.app import App
from sdk.errors import ConfigurationError


def load_app(spec: str) -> App:
    """The App ``spec`` names, with its ``include=`` modules imported."""
    app = _find(spec)
    app.import_included()
    return app


def _find(spec: str) -> App:
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as Celery does: `-A proj` finds ./proj
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, App):
            raise ConfigurationError(f"{spec!r} is not a celeriac App")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) != 1:
        found = "no App" if not apps else f"{len(apps)} Apps"
        raise ConfigurationError(f"{module_name!r} has {found}; name one as {module_name}:attr")
    return apps[0]
