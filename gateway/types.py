"""Type aliases shared by the gateway's modules."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSONDict = dict[str, Any]

__all__ = ["ASGIApp", "JSONDict", "Message", "Receive", "Scope", "Send"]
