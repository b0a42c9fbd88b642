"""A slot's lane on the local Redis Cluster: one connection per node, calls routed by
slot, a moved slot followed, a dropped connection or a forgotten script recovered."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from executors.lane import ClusterLane, ScriptLane, lane_for
from sdk.clients import sync_client
from sdk.embedded import EmbeddedCluster
from sdk.protocol import Message, new_id, now_ms, plans
from sdk.protocol.keys import Keys
from sdk.protocol.plans import Limits, Submission
from tests.conftest import slot_moved

KEYS = Keys(partitions=16)


def submit(run_id: str) -> plans.ScriptCall[bool]:
    message = Message(id=run_id, created_at=now_ms(), task="t.add", queue="q")
    return plans.submit(KEYS, Limits(), Submission(message, b"{}"))


def ids_in_every_partition() -> list[str]:
    found: dict[int, str] = {}
    while len(found) < KEYS.partitions:
        run_id = new_id()
        found.setdefault(KEYS.partition(run_id), run_id)
    return [found[part] for part in KEYS.all_partitions]


def test_the_lane_of_a_cluster_client_routes_each_call_to_its_slots_node(
    valkey_cluster: EmbeddedCluster, cluster_client: RedisCluster, redis_url: str
) -> None:
    assert isinstance(lane_for(sync_client(redis_url)), ScriptLane)
    lane = lane_for(sync_client(valkey_cluster.url))
    assert isinstance(lane, ClusterLane)
    ids = ids_in_every_partition()
    try:
        assert [lane(submit(run_id)) for run_id in ids] == [True] * len(ids)
        assert len(lane._connections) == 3  # one connection per node, whatever the slot
        assert all(cluster_client.exists(KEYS.run(run_id)) for run_id in ids)
    finally:
        lane.close()


def test_the_lane_follows_a_moved_slot_and_recovers_from_drops_and_flushes(
    valkey_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    client = sync_client(valkey_cluster.url)
    lane = lane_for(client)
    first, moved, later = ids_in_every_partition()[:3]  # three slots
    try:
        assert lane(submit(first))  # the slot map is read before the move
        with slot_moved(valkey_cluster, KEYS.run(moved)):
            assert lane(submit(moved))  # MOVED: sent through the client, which follows it
            assert cluster_client.exists(KEYS.run(moved))
            cluster_client.flushall()  # a slot moves only while it holds no key
        cluster_client.client_kill_filter(_type="normal", target_nodes="primaries")
        with pytest.raises(redis.ConnectionError):
            lane(submit(later))  # the caller backs off and tries again
        cluster_client.script_flush()
        assert lane(submit(later))  # on fresh connections, the script loaded again
    finally:
        lane.close()
        client.close()
