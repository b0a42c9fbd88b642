"""Run states, as strings on the wire and in Redis."""

from __future__ import annotations

PENDING = "PENDING"
SCHEDULED = "SCHEDULED"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
PROGRESS = "PROGRESS"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
EXPIRED = "EXPIRED"
DEAD = "DEAD"

TERMINAL: frozenset[str] = frozenset({SUCCESS, FAILURE, REVOKED, EXPIRED, DEAD})
ALL: frozenset[str] = frozenset(
    {PENDING, SCHEDULED, RECEIVED, STARTED, PROGRESS, RETRY} | TERMINAL
)
