"""Pools by name: ``prefork`` and ``threads`` built in, more via ``celeriac.pools``.

The pool name is interpreted here and nowhere else.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from executors.pools.base import Pool, SlotTarget
from sdk.errors import ConfigurationError


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="celeriac.pools"))


def create_pool(name: str) -> Pool:
    """A new pool of the named kind."""
    for ep in entry_points(group="celeriac.pools"):
        if ep.name == name:
            try:
                cls = ep.load()
            except ImportError as exc:
                raise ConfigurationError(
                    f"pool {name!r} needs a package that is not installed ({exc.name}); "
                    f"try: pip install 'celeriac[{name}]'"
                ) from exc
            pool: Pool = cls()
            return pool
    raise ConfigurationError(f"unknown pool {name!r}; available: {', '.join(available())}")


__all__ = ["Pool", "SlotTarget", "available", "create_pool"]
