"""Two scheduler processes, a 1-second schedule, the leader SIGKILLed mid-way: every fire
time yields exactly one run (the standby catches up on the few seconds without a leader).

Full size (CELERIAC_FULL_CHAOS=1): 60 s with the kill at 20 s, as issue 5 asks; CI: 20 s
with the kill at 8 s. Either way: duration ± 1 runs, no fire time twice, at most one
missed around the failover.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from itertools import pairwise

import pytest
import redis

from gateway.scheduler.model import fire_ms_of
from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import history, register
from tests.reliability.conftest import scale
from tests.schedulers import SchedulerFactory, leader, start_scheduler, wait_for

__all__ = ["start_scheduler"]


def beat() -> None:
    """The scheduled task (no worker runs it: runs are counted in Redis)."""


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_leader_killed_every_fire_time_runs_once(
    r: redis.Redis,
    layout: Keys,
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    start_scheduler: SchedulerFactory,
) -> None:
    duration, kill_at = scale(60, 20), scale(20, 8)
    task = register(r, beat, name="failover.beat")
    gw = make_gateway(redis_url=redis_url)
    procs = [start_scheduler(), start_scheduler()]
    wait_for(lambda: leader(r), 10, "a scheduler leads")
    body = {"id": "beat", "task": task, "trigger": {"type": "interval", "seconds": 1}}
    created = gw.client.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    start = time.monotonic()

    time.sleep(kill_at)
    holder = leader(r)
    assert holder is not None
    pid = int(holder.split(":")[1])
    victim = next(p for p in procs if p.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.wait(5)
    killed = leader(r)
    wait_for(lambda: leader(r) not in (None, killed), 10, "the standby takes the lease")
    taken_after = time.monotonic() - start - kill_at

    time.sleep(max(duration - (time.monotonic() - start), 0) + 0.5)
    first = gw.client.get("/schedules/beat").json()
    assert gw.client.post("/schedules/beat/pause").status_code == 200
    fires = sorted(fire_ms_of(run_id) for run_id in history(r, layout))
    assert first["last_run_id"] is not None

    anchor = fires[0] - 1000  # the schedule's creation (its first fire is 1 s later)
    within = [f for f in fires if f <= anchor + duration * 1000]
    assert len(within) == len(set(within)), "a fire time ran twice"
    assert duration - 1 <= len(within) <= duration + 1, (len(within), taken_after)
    gaps = [b - a for a, b in pairwise(within)]
    assert all(g % 1000 == 0 for g in gaps), gaps  # fire times are exact seconds apart
    assert sum(g // 1000 - 1 for g in gaps) <= 1, gaps  # at most one missed
    assert taken_after < 8, taken_after
