"""Every Redis key, stream, group and channel name, built in one place.

Runs are spread over ``partitions`` (1 on a single server; several on Redis Cluster). A
run's partition is ``crc16(run id) mod partitions``, so any component finds a run's
record from its id alone, whatever the id looks like. Every key a script touches for a
run shares the partition's hash tag ``{<n>}``: the record, the queue streams the run sits
in, its delayed set, the partition's history, events and webhook sets. One script call
therefore stays in one Cluster slot, and the runs of even a single queue spread over
every shard. docs/protocol.md describes the layout; change both together.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from sdk.config import Settings
from sdk.errors import ConfigurationError
from sdk.protocol.clock import new_id

PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
GROUP = "celeriac"  # the executors' consumer group on every queue stream
WEBHOOKS_GROUP = "webhooks"  # the gateways' consumer group on every events stream
DEAD_LETTERS_MAX = 100_000  # entries kept (approximately) in one dead-letter stream


def partition_of(name: str, partitions: int) -> int:
    """The partition of a run id or idempotency key: Redis Cluster's own CRC16."""
    if partitions == 1:
        return 0
    return binascii.crc_hqx(name.encode(), 0) % partitions


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "celeriac"
    partitions: int = 1
    _tags: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= 16384:
            raise ConfigurationError(f"partitions must be 1-16384, not {self.partitions}")
        # Built once: a worker spells several keys per run.
        tags = tuple(f"{self.prefix}:{{{n}}}" for n in range(self.partitions))
        object.__setattr__(self, "_tags", tags)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        return cls(settings.prefix, settings.partition_count)

    def partition(self, run_id: str) -> int:
        # Inlined for one partition: a worker asks several times per run.
        return 0 if self.partitions == 1 else partition_of(run_id, self.partitions)

    def key_partition(self, idempotency_key: str) -> int:
        return partition_of(idempotency_key, self.partitions)

    def run_id_for(self, idempotency_key: str) -> str:
        """A fresh run id of the key's partition, so the key and the run it creates
        are in one slot (a few tries on average: as many as there are partitions)."""
        return self.new_run_id(self.key_partition(idempotency_key))

    def new_run_id(self, part: int) -> str:
        """A fresh run id of partition ``part`` (the links of a chain share one)."""
        while self.partition(run_id := new_id()) != part:
            pass
        return run_id

    @property
    def all_partitions(self) -> range:
        return range(self.partitions)

    def _tag(self, part: int) -> str:
        return self._tags[part]

    # -- per partition and queue ----------------------------------------------------------------
    def stream(self, part: int, queue: str, priority: int) -> str:
        """The stream holding runs of one queue at one priority (0-9, 9 highest)."""
        return f"{self._tag(part)}:q:{queue}:p{priority}"

    def streams(self, part: int, queue: str) -> list[str]:
        """A queue's streams in one partition, highest priority first."""
        return [self.stream(part, queue, p) for p in reversed(PRIORITIES)]

    def delayed(self, part: int, queue: str) -> str:
        """Sorted set of runs waiting for their countdown/ETA, scored by due time (ms)."""
        return f"{self._tag(part)}:q:{queue}:delayed"

    def dead(self, part: int, queue: str) -> str:
        """Stream of runs that exhausted their deliveries."""
        return f"{self._tag(part)}:q:{queue}:dead"

    # -- per partition ---------------------------------------------------------------------------
    def history(self, part: int) -> str:
        """Sorted set of recent run ids by creation time (bounded history for GET /runs)."""
        return f"{self._tag(part)}:runs"

    def events(self, part: int) -> str:
        """Stream of run events (SSE, long-poll wake-ups, webhooks), capped; partition 0's
        also carries worker events."""
        return f"{self._tag(part)}:events"

    @property
    def worker_events(self) -> str:
        """The events stream that carries worker events: partition 0's."""
        return self.events(0)

    def queues(self, part: int) -> str:
        """Set of every queue name a run of this partition was ever sent to."""
        return f"{self._tag(part)}:queues"

    def revoked(self, part: int) -> str:
        """Sorted set of revoked run ids, scored by when the entry may be forgotten (ms)."""
        return f"{self._tag(part)}:revoked"

    def webhooks_due(self, part: int) -> str:
        """Sorted set of run ids whose webhook is pending after its first claim, scored by
        the next attempt (ms), or by the end of the lease while an attempt is made."""
        return f"{self._tag(part)}:webhooks:due"

    def webhooks_fresh(self, part: int) -> str:
        """Sorted set of run ids whose webhook's first attempt is not claimed yet, scored
        by when it was queued (ms); claiming moves an id to ``webhooks_due``."""
        return f"{self._tag(part)}:webhooks:fresh"

    # -- per run (in the run's partition) --------------------------------------------------------
    def run(self, run_id: str) -> str:
        """Hash holding a run's record: state, timings, result or error, the message."""
        return f"{self._tags[self.partition(run_id)]}:run:{run_id}"

    def chord(self, body_id: str) -> str:
        """Hash: a chord's count of header runs left and their results (``r<i>``), named
        by its body's run id; every header run is of the body's partition."""
        return f"{self._tags[self.partition(body_id)]}:chord:{body_id}"

    def workflow(self, workflow_id: str) -> str:
        """String: a workflow submitted over HTTP (JSON: kind, members, result run)."""
        return f"{self._tags[self.partition(workflow_id)]}:workflow:{workflow_id}"

    def group(self, group_id: str) -> str:
        """String: a saved group's run ids (JSON list), kept as long as results."""
        return f"{self._tags[self.partition(group_id)]}:group:{group_id}"

    def webhook(self, run_id: str) -> str:
        """Hash: a run's webhook delivery while it is pending (url, payload, attempts)."""
        return f"{self._tag(self.partition(run_id))}:webhook:{run_id}"

    def done_channel(self, run_id: str) -> str:
        """Pub/sub channel told once when the run reaches a terminal state."""
        return f"{self.prefix}:done:{run_id}"

    def idempotency(self, key: str) -> str:
        """String: the first answer to a submission made with this Idempotency-Key (JSON).
        In the key's own partition: the run it creates is given an id of that partition."""
        return f"{self._tag(partition_of(key, self.partitions))}:idem:{key}"

    # -- global (each touched alone, by single-key commands) -------------------------------------
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
