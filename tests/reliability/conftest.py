"""Reliability tests reuse the executor fixtures: real workers, real server."""

from __future__ import annotations

import os

from tests.executors.conftest import app, start_worker

__all__ = ["app", "scale", "start_worker"]


def scale(full: int, ci: int) -> int:
    """Size of a heavy test: ``full`` with CELERIAC_FULL_CHAOS=1, else the smaller CI size."""
    return full if os.environ.get("CELERIAC_FULL_CHAOS") == "1" else ci
