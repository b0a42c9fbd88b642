"""Top-level Redis commands per run, from a short MONITOR sample.

commandstats (see drain.py) also counts what Lua scripts run inside Redis; here an
EVALSHA counts once, as one command sent. A warm worker runs while M runs are queued and
drained; the commands of this process's connections are the producer's, all others the
worker's. The harness's own result probes are taken off the producer's count.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from loadtests.drain import Waiter, enqueue
from loadtests.peers import Peer
from loadtests.procs import BenchError, Procs, tail
from loadtests.redisstats import OWN, Monitor, own_ports

_WARM_UP = 5


@dataclass
class Sample:
    producer: Counter[str]  # top-level commands from the producer's connections
    worker: Counter[str]  # top-level commands from every other client
    scripted: Counter[str]  # commands run inside scripts, both sides


def sample(
    client: redis.Redis, url: str, procs: Procs, peer: Peer, kind: str, m: int, timeout: float
) -> Sample:
    pool = peer.pools[0]
    client.flushdb()
    proc = procs.spawn(f"{peer.name} {pool} monitor", peer.worker_command(pool))
    try:
        trip = next(iter(peer.round_trips(kind, None).values()))
        for _ in range(_WARM_UP):  # the worker is up and every connection is open
            trip()
        time.sleep(0.5)
        parts = urlsplit(url)
        with Monitor(parts.hostname or "127.0.0.1", parts.port or 6379) as mon:
            handles, _ = enqueue(peer, pool, kind, m)
            waiter = Waiter(client, peer.probes(handles), peer)
            waiter.wait(time.perf_counter(), timeout, lambda: proc.poll() is None)
            mine = own_ports(parts.port or 6379)
            time.sleep(0.2)  # the last lines reach the monitor
    except BenchError as exc:
        raise BenchError(f"{peer.name} MONITOR sample: {exc}{tail(procs.log(proc))}") from exc
    finally:
        procs.stop(proc)
    producer, worker = mon.lines.split(mine)
    producer.subtract(waiter.sent)
    return Sample(_clean(producer), _clean(worker), _clean(mon.lines.scripted))


def _clean(counts: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in counts.items() if v > 0 and k not in OWN})
