"""Lua scripts of the wire protocol, loaded by name (see docs/protocol.md).

A composed script calls other scripts as local functions: each part is wrapped as
``local function <part>(KEYS, ARGV) ... end``, so its own ``KEYS``/``ARGV`` are the slices
the composed script passes it, and its ``return`` returns to the caller.
"""

from __future__ import annotations

from importlib.resources import files

NAMES = (
    "submit",
    "submit_many",
    "start",
    "finish",
    "step",
    "retry",
    "promote",
    "revoke",
    "rate",
    "fetch",
    "requeue",
)
#: composed scripts and the scripts they call
PARTS = {"step": ("finish", "start", "fetch"), "submit_many": ("submit",)}


def _read(name: str) -> str:
    return (files(__package__) / f"{name}.lua").read_text()


def function(name: str) -> str:
    """Script ``name`` as a local Lua function of (KEYS, ARGV)."""
    return f"local function {name}(KEYS, ARGV)\n{_read(name)}\nend\n"


def source(name: str) -> str:
    return "".join(function(part) for part in PARTS.get(name, ())) + _read(name)
