"""Webhooks: signed, durable callbacks on terminal states (docs/webhooks.md)."""

from __future__ import annotations

from gateway.webhooks.dispatch import Dispatcher
from sdk.outbound import AllowList, check

__all__ = ["AllowList", "Dispatcher", "check"]
