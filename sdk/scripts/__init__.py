"""Lua scripts of the wire protocol, loaded by name (see docs/protocol.md)."""

from __future__ import annotations

from importlib.resources import files

NAMES = ("submit", "start", "finish", "retry", "promote", "revoke", "rate", "fetch", "requeue")


def source(name: str) -> str:
    return (files(__package__) / f"{name}.lua").read_text()
