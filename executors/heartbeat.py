"""Registration and heartbeats: what the gateway reads for /tasks and /workers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
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


@dataclass
class Counters:
    """Run counts shared by every slot, in shared memory so prefork children count too."""

    processed: Synchronized[int]
    failed: Synchronized[int]
    active: Synchronized[int]


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
        "active": counters.active.value,
        "processed": counters.processed.value,
        "failed": counters.failed.value,
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
