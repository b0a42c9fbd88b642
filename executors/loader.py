"""``-A module[:attr]``: import the user's module and find its App (see sdk/loader.py)."""

from __future__ import annotations

from sdk.loader import load_app

__all__ = ["load_app"]
