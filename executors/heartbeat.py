"""Registration and heartbeats: what the gateway reads for /tasks and /workers."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from sdk.app import App
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits

HEARTBEAT_S = 2.0
DEAD_AFTER_S = 15.0


@dataclass
class WorkerInfo:
    id: str
    pool: str
    concurrency: int
    queues: list[str]
    tasks: list[str]
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: int = field(default_factory=now_ms)


class Counters:
    """Run counts of every slot, in shared memory so prefork children count too. Each
    slot writes only its own cells, so none takes a lock: one lock shared by every slot
    cost 40-50 us a run under threads -c 8, the slots queueing on it and on the GIL.
    Readers sum the cells (a cell is one aligned 64-bit word: never read half-written)."""

    def __init__(self, slots: int) -> None:
        self._active = multiprocessing.RawArray(ctypes.c_int64, slots)
        self._processed = multiprocessing.RawArray(ctypes.c_int64, slots)
        self._failed = multiprocessing.RawArray(ctypes.c_int64, slots)

    def started(self, slot: int) -> None:
        self._active[slot] += 1

    def finished(self, slot: int, failed: bool) -> None:
        self._active[slot] -= 1
        self._processed[slot] += 1
        if failed:
            self._failed[slot] += 1

    @property
    def active(self) -> int:
        return sum(self._active)

    @property
    def processed(self) -> int:
        return sum(self._processed)

    @property
    def failed(self) -> int:
        return sum(self._failed)


def register_tasks(client: redis.Redis, keys: Keys, app: App) -> None:
    """Publish the catalog entries of every task; the latest registration wins."""
    entries = {
        name: msgspec.json.encode(task.catalog_entry(app.conf.default_queue))
        for name, task in app.tasks.items()
    }
    if entries:
        client.hset(keys.tasks, mapping=entries)  # type: ignore[arg-type]


def beat(client: redis.Redis, keys: Keys, info: WorkerInfo, counters: Counters) -> None:
    state: dict[str, Any] = {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "pool": info.pool,
        "concurrency": info.concurrency,
        "queues": info.queues,
        "tasks": info.tasks,
        "active": counters.active,
        "processed": counters.processed,
        "failed": counters.failed,
        "started_at": info.started_at,
        "last_heartbeat": now_ms(),
    }
    pipe = client.pipeline(transaction=False)
    pipe.hset(keys.workers, info.id, msgspec.json.encode(state))
    pipe.set(keys.worker_alive(info.id), 1, px=int(DEAD_AFTER_S * 1000))
    created, _ = pipe.execute()
    if created:  # the first beat (or the first after an unregister): tell /events
        worker_event(client, keys, info.id, "online", host=info.host, pid=info.pid, pool=info.pool)


def worker_event(
    client: redis.Redis, keys: Keys, worker_id: str, state: str, **extra: str | int
) -> None:
    """A ``kind=worker`` entry on the events stream (``event: worker`` on /events)."""
    fields: dict[Any, Any] = {"kind": "worker", "id": worker_id, "state": state}
    fields.update(at=now_ms(), **extra)
    client.xadd(keys.worker_events, fields, maxlen=Limits().events, approximate=True)


def unregister(client: redis.Redis, keys: Keys, worker_id: str) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.hdel(keys.workers, worker_id)
    pipe.delete(keys.worker_alive(worker_id))
    pipe.execute()
    worker_event(client, keys, worker_id, "offline")
