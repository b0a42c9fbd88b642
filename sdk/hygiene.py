"""Checks of the Redis server's own settings that decide whether runs can silently vanish."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def eviction_warning(config: Mapping[Any, Any]) -> str | None:
    """A warning when Redis may evict keys: queues and results would vanish silently.

    ``config`` is the reply of ``CONFIG GET maxmemory*``. With ``maxmemory`` set, any
    policy but ``noeviction`` may drop streams or (volatile-*) run records, which have TTLs.
    """
    values = {_text(k): _text(v) for k, v in config.items()}
    policy = values.get("maxmemory-policy", "noeviction")
    if values.get("maxmemory", "0") in {"0", ""} or policy == "noeviction":
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}: under memory pressure it will evict queued "
        "runs and results without a trace. Set maxmemory-policy noeviction."
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
