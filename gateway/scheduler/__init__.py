"""The scheduler: periodic and one-off runs, fired by APScheduler in one leader process.

``SchedulerService`` runs one scheduler (standby or leader); ``Admin`` creates, changes
and reads schedules; docs/scheduling.md explains the store, the lease and the dedupe.
"""

from __future__ import annotations

from gateway.scheduler.admin import Admin
from gateway.scheduler.service import SchedulerService, Static, Timing

__all__ = ["Admin", "SchedulerService", "Static", "Timing"]
