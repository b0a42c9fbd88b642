"""Every Redis key, stream, group and channel name, built in one place.

Keys of one queue share the hash tag ``{q:<queue>}`` so that a queue lives in a single
Redis Cluster slot. The layout is documented in docs/protocol.md; change both together.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
GROUP = "celeriac"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "celeriac"

    # -- per queue (one hash slot) --------------------------------------------------------
    def stream(self, queue: str, priority: int) -> str:
        """The stream holding runs of one queue at one priority (0-9, 9 highest)."""
        return f"{self.prefix}:{{q:{queue}}}:p{priority}"

    def streams(self, queue: str) -> list[str]:
        """A queue's streams, highest priority first."""
        return [self.stream(queue, p) for p in reversed(PRIORITIES)]

    def delayed(self, queue: str) -> str:
        """Sorted set of runs waiting for their countdown/ETA, scored by due time (ms)."""
        return f"{self.prefix}:{{q:{queue}}}:delayed"

    def dead(self, queue: str) -> str:
        """Stream of runs that exhausted their deliveries."""
        return f"{self.prefix}:{{q:{queue}}}:dead"

    # -- per run ---------------------------------------------------------------------------
    def run(self, run_id: str) -> str:
        """Hash holding a run's record: state, timings, result or error, the message."""
        return f"{self.prefix}:run:{run_id}"

    def done_channel(self, run_id: str) -> str:
        """Pub/sub channel told once when the run reaches a terminal state."""
        return f"{self.prefix}:done:{run_id}"

    # -- global ----------------------------------------------------------------------------
    @property
    def runs(self) -> str:
        """Sorted set of recent run ids by creation time (bounded history for GET /runs)."""
        return f"{self.prefix}:runs"

    @property
    def events(self) -> str:
        """Stream of run and worker events (SSE, long-poll wake-ups), capped."""
        return f"{self.prefix}:events"

    @property
    def queues(self) -> str:
        """Set of every queue name a run was ever sent to."""
        return f"{self.prefix}:queues"

    @property
    def tasks(self) -> str:
        """Hash: task name -> catalog entry (JSON), written by executors."""
        return f"{self.prefix}:tasks"

    @property
    def workers(self) -> str:
        """Hash: worker id -> worker state (JSON), refreshed by heartbeats."""
        return f"{self.prefix}:workers"

    def worker_alive(self, worker_id: str) -> str:
        """Key that exists while the worker's heartbeat is fresh (expires on its own)."""
        return f"{self.prefix}:worker:{worker_id}"

    def rate(self, task: str) -> str:
        """The shared rate-limit state of one task (every worker takes turns from it)."""
        return f"{self.prefix}:rate:{task}"

    @property
    def control(self) -> str:
        """Pub/sub channel of commands to every worker (terminate a run)."""
        return f"{self.prefix}:control"

    @property
    def revoked(self) -> str:
        """Sorted set of revoked run ids, scored by when the entry may be forgotten (ms)."""
        return f"{self.prefix}:revoked"

    # -- scheduler (one hash tag, so its script may touch them together) ---------------------
    @property
    def schedules(self) -> str:
        """Hash: schedule id -> definition (JSON), written by the gateway, CLI and scheduler."""
        return f"{self.prefix}:{{sched}}:schedules"

    @property
    def schedule_state(self) -> str:
        """Hash: schedule id -> state (JSON: last fire time, last run id and time)."""
        return f"{self.prefix}:{{sched}}:state"

    @property
    def schedules_version(self) -> str:
        """Counter bumped on every change of a definition; the leader reloads when it moves."""
        return f"{self.prefix}:{{sched}}:version"

    @property
    def scheduler_leader(self) -> str:
        """The leader lease: the id of the scheduler process that fires schedules (PX)."""
        return f"{self.prefix}:{{sched}}:leader"

    # -- idempotency and webhooks (docs/webhooks.md, docs/results.md) ------------------------
    def idempotency(self, key: str) -> str:
        """String: the first answer to a submission made with this Idempotency-Key (JSON)."""
        return f"{self.prefix}:idem:{key}"

    def webhook(self, run_id: str) -> str:
        """Hash: a run's webhook delivery while it is pending (url, payload, attempts)."""
        return f"{self.prefix}:webhook:{run_id}"

    @property
    def webhooks_due(self) -> str:
        """Sorted set of run ids whose webhook is pending after its first claim, scored by
        the next attempt (ms), or by the end of the lease while an attempt is made."""
        return f"{self.prefix}:webhooks:due"

    @property
    def webhooks_fresh(self) -> str:
        """Sorted set of run ids whose webhook's first attempt is not claimed yet, scored
        by when it was queued (ms); claiming moves an id to ``webhooks_due``."""
        return f"{self.prefix}:webhooks:fresh"

    @property
    def webhooks_group(self) -> str:
        """Consumer group on the events stream through which gateways queue deliveries."""
        return "webhooks"
