"""Every script's verdicts, driven through ``plans`` + ``Scripts`` against a real server.

Each test checks what Redis holds afterwards (the record, the streams, the sets), not
only the reply. Where partitioning matters a test runs with 1 and with 4 partitions, and
every test runs against one Valkey server and against a local three-primary Redis
Cluster, where a script touching keys of two slots fails (CROSSSLOT).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import msgspec
import pytest
import redis
from redis.exceptions import RedisClusterException

from sdk import states
from sdk.protocol import Message, decode_envelope, encode_envelope, new_id, now_ms, plans
from sdk.protocol.drivers import Scripts
from sdk.protocol.keys import DEFAULT_PRIORITY, GROUP, Keys
from sdk.protocol.plans import Limits, Once, ScriptCall, Start, StreamEntry, Submission, Verdict

LIMITS = Limits(history=1_000, events=10_000, result_ttl=600)
QUEUE = "q"
BODY = b'{"args": [1, 2]}'
WORKER = "w1"
Listen = Callable[[str], Any]


@pytest.fixture(params=[1, 4], ids=lambda n: f"partitions={n}")
def keys(request: pytest.FixtureRequest) -> Keys:
    return Keys("celeriac", request.param)


@pytest.fixture(params=["valkey", "cluster"])
def r(request: pytest.FixtureRequest) -> redis.Redis:
    """A client of the session's server, or of the local cluster (both flushed)."""
    name = "redis_url" if request.param == "valkey" else "cluster_client"
    if name == "redis_url":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        request.addfinalizer(client.close)
        return client
    return cast(redis.Redis, request.getfixturevalue("cluster_client"))


@pytest.fixture
def scripts(r: redis.Redis) -> Scripts:
    return Scripts(r)


# -- making runs --------------------------------------------------------------------------------
def id_in(keys: Keys, part: int) -> str:
    while keys.partition(run_id := new_id()) != part:
        pass
    return run_id


def message(
    keys: Keys, *, part: int | None = None, run_id: str | None = None, **fields: Any
) -> Message:
    """An envelope of task ``t.add`` on ``QUEUE`` (in partition ``part``, when given)."""
    run_id = run_id or (new_id() if part is None else id_in(keys, part))
    fields.setdefault("task", "t.add")
    fields.setdefault("queue", QUEUE)
    return Message(id=run_id, created_at=now_ms(), **fields)


def submit(scripts: Scripts, keys: Keys, m: Message) -> bool:
    return scripts(plans.submit(keys, LIMITS, Submission(m, BODY)))


def submitted(scripts: Scripts, keys: Keys, **fields: Any) -> Message:
    m = message(keys, **fields)
    assert submit(scripts, keys, m)
    return m


def groups(r: redis.Redis, keys: Keys, part: int, queue: str = QUEUE) -> None:
    """The consumer group on every stream of the queue, as a worker creates it."""
    for stream in keys.streams(part, queue):
        try:
            r.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:  # BUSYGROUP: made by an earlier call
            assert "BUSYGROUP" in str(exc)


def fetch(
    r: redis.Redis, scripts: Scripts, keys: Keys, part: int, count: int = 100, fair: bool = False
) -> list[StreamEntry]:
    groups(r, keys, part)
    return scripts(plans.fetch(keys.streams(part, QUEUE), "c1", count, fair))


def delivered(r: redis.Redis, scripts: Scripts, keys: Keys, m: Message) -> StreamEntry:
    """The run's stream entry, read by a consumer (other runs read alongside stay pending)."""
    entries = fetch(r, scripts, keys, keys.partition(m.id))
    return next(e for e in entries if decode_envelope(e.fields[b"env"]).id == m.id)


def start(scripts: Scripts, keys: Keys, m: Message, max_deliveries: int = 0) -> Start:
    return scripts(plans.start(keys, LIMITS, m, WORKER, max_deliveries))


def started(
    r: redis.Redis, scripts: Scripts, keys: Keys, **fields: Any
) -> tuple[Message, StreamEntry]:
    """A run submitted, read from its stream and started, as a worker is about to run it."""
    m = submitted(scripts, keys, **fields)
    entry = delivered(r, scripts, keys, m)
    assert start(scripts, keys, m).verdict == "STARTED"
    return m, entry


def finish(
    keys: Keys,
    m: Message,
    entry: StreamEntry | None,
    state: str = states.SUCCESS,
    **fields: bytes | str,
) -> ScriptCall[bool]:
    """A finish taking 7 ms; with no entry, there is nothing to acknowledge."""
    stream = entry.stream if entry else keys.stream(keys.partition(m.id), m.queue, m.priority)
    entry_id = entry.id if entry else ""
    return plans.finish(keys, LIMITS, m, stream, entry_id, state, 7, fields)


# -- reading Redis --------------------------------------------------------------------------------
def record(r: redis.Redis, keys: Keys, run_id: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = r.hgetall(keys.run(run_id))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def events(r: redis.Redis, keys: Keys, run_id: str) -> list[str]:
    """The states the run's partition's events stream announced for it, in order."""
    raw: Any = r.xrange(keys.events(keys.partition(run_id)))
    return [f[b"state"].decode() for _, f in raw if f[b"id"] == run_id.encode()]


def pending(r: redis.Redis, stream: str) -> int:
    return int(r.xpending(stream, GROUP)["pending"])


def in_stream(r: redis.Redis, stream: str) -> list[str]:
    """Run ids of a stream's entries, oldest first."""
    raw: Any = r.xrange(stream)
    return [decode_envelope(f[b"env"]).id for _, f in raw]


@pytest.fixture
def listen(r: redis.Redis) -> Iterator[Listen]:
    """Subscribe to a channel (before the script under test publishes)."""
    pubsub = r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]

    def subscribe(channel: str) -> Any:
        pubsub.subscribe(channel)
        return pubsub

    yield subscribe
    pubsub.close()


def published(pubsub: Any, timeout: float = 1.0) -> list[bytes]:
    """Messages received within ``timeout`` (a little longer after each one)."""
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            out.append(message["data"])
            deadline = time.monotonic() + 0.2  # a little longer for a second one
    return out


# -- submit ---------------------------------------------------------------------------------------
def test_submit_creates_the_record_the_entry_the_history_and_an_event(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = submitted(scripts, keys, priority=7, parent_id="parent-1", callback_url="https://x.test/h")
    part = keys.partition(m.id)
    run = record(r, keys, m.id)
    assert run["task"] == "t.add" and run["queue"] == QUEUE and run["state"] == states.PENDING
    assert run["created_at"] == str(m.created_at) and run["attempts"] == "0"
    assert run["body"] == BODY.decode() and run["env"] == encode_envelope(m).decode()
    assert run["parent_id"] == "parent-1" and run["callback_url"] == "https://x.test/h"
    assert "root_id" not in run  # unset extras are not written
    stream = keys.stream(part, QUEUE, 7)
    assert in_stream(r, stream) == [m.id]
    assert r.zscore(keys.history(part), m.id) == m.created_at
    assert r.sismember(keys.queues(part), QUEUE)
    assert events(r, keys, m.id) == [states.PENDING]
    # one script call, one slot: every key written carries the run's partition tag
    assert all(f"{{{part}}}".encode() in key for key in r.keys("*"))


def test_a_second_run_with_the_same_id_is_refused_and_changes_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = submitted(scripts, keys)
    part = keys.partition(m.id)
    before = record(r, keys, m.id)
    other = msgspec.structs.replace(m, task="t.other", priority=9)
    assert submit(scripts, keys, other) is False
    assert record(r, keys, m.id) == before
    assert r.xlen(keys.stream(part, QUEUE, 9)) == 0 and r.xlen(keys.stream(part, QUEUE, 5)) == 1
    assert events(r, keys, m.id) == [states.PENDING]


def test_the_same_submission_resent_byte_for_byte_is_accepted_once(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = submitted(scripts, keys)
    assert submit(scripts, keys, m) is True  # a client re-sending a call whose reply was lost
    assert in_stream(r, keys.stream(keys.partition(m.id), QUEUE, 5)) == [m.id]
    assert events(r, keys, m.id) == [states.PENDING]


def test_a_delayed_submission_waits_in_the_delayed_set(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    eta = now_ms() + 60_000
    m = submitted(scripts, keys, eta=eta)
    part = keys.partition(m.id)
    assert r.zscore(keys.delayed(part, QUEUE), m.id) == eta
    assert record(r, keys, m.id)["state"] == states.SCHEDULED
    assert all(r.xlen(s) == 0 for s in keys.streams(part, QUEUE))
    assert events(r, keys, m.id) == [states.SCHEDULED]


def test_an_eta_already_past_queues_at_once(r: redis.Redis, scripts: Scripts, keys: Keys) -> None:
    m = submitted(scripts, keys, eta=now_ms() - 1)
    part = keys.partition(m.id)
    assert r.zcard(keys.delayed(part, QUEUE)) == 0
    assert in_stream(r, keys.stream(part, QUEUE, 5)) == [m.id]


def test_submit_many_answers_in_batch_order_across_partitions(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    taken = submitted(scripts, keys, task="t.other")
    batch = [message(keys, part=i % keys.partitions) for i in range(12)]
    batch.insert(5, msgspec.structs.replace(taken, task="t.add"))  # an id another run has
    plan = plans.submit_many(keys, LIMITS, [Submission(m, BODY) for m in batch])
    assert len(plan.calls) == keys.partitions  # one call per partition touched
    created = plan.merge(scripts.many(plan.calls))
    assert created == [m.id != taken.id for m in batch]
    for m in batch:
        assert record(r, keys, m.id)["task"] == ("t.other" if m is batch[5] else "t.add")
    queued = sum(r.xlen(keys.stream(p, QUEUE, 5)) for p in keys.all_partitions)
    assert queued == len(batch)  # 12 new ones and the one that was there


def test_submit_many_splits_a_large_partition_into_bounded_calls(
    r: redis.Redis, scripts: Scripts
) -> None:
    keys = Keys("celeriac", 1)
    batch = [message(keys) for _ in range(plans.SUBMIT_CHUNK + 1)]
    plan = plans.submit_many(keys, LIMITS, [Submission(m, BODY) for m in batch])
    assert len(plan.calls) == 2
    assert plan.merge(scripts.many(plan.calls)) == [True] * len(batch)
    assert r.xlen(keys.stream(0, QUEUE, 5)) == len(batch)


def submit_once(scripts: Scripts, keys: Keys, m: Message, key: str, answer: bytes) -> Once:
    return scripts(plans.submit_once(keys, LIMITS, Submission(m, BODY), key, answer))


def test_submit_once_creates_then_answers_what_it_remembered(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    key = "order-17"
    first = message(keys, run_id=keys.run_id_for(key))
    assert submit_once(scripts, keys, first, key, b'{"id": "first"}') == Once(True, None)
    assert r.get(keys.idempotency(key)) == b'{"id": "first"}'
    assert 0 < r.ttl(keys.idempotency(key)) <= LIMITS.result_ttl
    assert record(r, keys, first.id)["state"] == states.PENDING

    remembered = Once(False, b'{"id": "first"}')
    again = message(keys, run_id=keys.run_id_for(key))
    assert submit_once(scripts, keys, again, key, b'{"id": "again"}') == remembered
    assert not r.exists(keys.run(again.id))
    assert submit_once(scripts, keys, first, key, b'{"id": "first"}') == remembered  # re-sent
    assert r.xlen(keys.stream(keys.partition(first.id), QUEUE, 5)) == 1
    assert r.get(keys.idempotency(key)) == b'{"id": "first"}'


def test_submit_once_with_an_id_taken_remembers_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    taken = submitted(scripts, keys)
    key = next(
        k for i in range(1000) if keys.key_partition(k := f"key-{i}") == keys.partition(taken.id)
    )
    other = msgspec.structs.replace(taken, task="t.other")  # the same id, another run
    assert submit_once(scripts, keys, other, key, b"{}") == Once(False, None)
    assert not r.exists(keys.idempotency(key))


def test_submit_once_needs_a_run_id_of_the_keys_partition() -> None:
    keys = Keys("celeriac", 4)
    key = "order-17"
    m = message(keys, part=(keys.key_partition(key) + 1) % 4)
    with pytest.raises(ValueError, match="partition"):
        plans.submit_once(keys, LIMITS, Submission(m, BODY), key, b"{}")


# -- start ----------------------------------------------------------------------------------------
def test_start_marks_the_run_started_and_counts_attempts_and_deliveries(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = submitted(scripts, keys)
    assert start(scripts, keys, m) == Start("STARTED", 1, 1, b"")
    run = record(r, keys, m.id)
    assert run["state"] == states.STARTED and run["worker"] == WORKER
    assert int(run["started_at"]) >= m.created_at
    assert start(scripts, keys, m) == Start("STARTED", 2, 2, b"")  # a redelivery
    assert record(r, keys, m.id)["attempts"] == "2"
    assert events(r, keys, m.id) == [states.PENDING, states.STARTED, states.STARTED]


def test_start_adopts_a_run_queued_without_a_record(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = message(keys)  # a foreign producer XADDed it and wrote no record
    assert start(scripts, keys, m) == Start("STARTED", 1, 1, b"")
    run = record(r, keys, m.id)
    assert (
        run["task"] == "t.add" and run["queue"] == QUEUE and run["created_at"] == str(m.created_at)
    )
    assert run["state"] == states.STARTED


def test_start_of_a_run_revoked_while_running_answers_revoke(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, _ = started(r, scripts, keys)
    assert scripts(plans.revoke(keys, LIMITS, m.id, QUEUE, False)).outcome == "RUNNING"
    assert start(scripts, keys, m) == Start("REVOKE", 0, 0, b"")  # its redelivery
    run = record(r, keys, m.id)
    assert run["attempts"] == "1" and run["deliveries"] == "1"  # not counted


def test_start_of_a_run_revoked_while_queued_answers_done(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    # revoke.lua makes a queued run REVOKED at once: its entry then reads as finished
    m = submitted(scripts, keys)
    assert scripts(plans.revoke(keys, LIMITS, m.id, QUEUE, False)).outcome == "REVOKED"
    assert start(scripts, keys, m).verdict == "DONE"
    assert record(r, keys, m.id)["state"] == states.REVOKED


def test_start_of_a_finished_run_answers_done_and_changes_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    assert scripts(finish(keys, m, entry))
    before = record(r, keys, m.id)
    assert start(scripts, keys, m) == Start("DONE", 0, 0, b"")
    assert record(r, keys, m.id) == before


def test_start_past_max_deliveries_answers_dead(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m = submitted(scripts, keys)
    assert [start(scripts, keys, m, max_deliveries=2).verdict for _ in range(2)] == ["STARTED"] * 2
    assert start(scripts, keys, m, max_deliveries=2) == Start("DEAD", 2, 2, b"")
    run = record(r, keys, m.id)
    assert run["state"] == states.STARTED and run["attempts"] == "2" and run["deliveries"] == "3"
    assert events(r, keys, m.id).count(states.STARTED) == 2


def test_start_of_a_killed_run_answers_killed_with_the_error(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, _ = started(r, scripts, keys)
    error = b'{"type": "TimeLimitExceeded", "message": "hard limit"}'
    r.hset(keys.run(m.id), "killed", error)  # what a worker writes when it stops the run
    assert start(scripts, keys, m) == Start("KILLED", 0, 0, error)
    assert record(r, keys, m.id)["attempts"] == "1"


# -- finish ---------------------------------------------------------------------------------------
def test_finish_stores_the_outcome_acks_publishes_and_expires(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m, entry = started(r, scripts, keys)
    r.hset(keys.run(m.id), "error", "from the first attempt")
    done = listen(keys.done_channel(m.id))
    assert scripts(finish(keys, m, entry, result=b"3", result_ct="application/json")) is True
    run = record(r, keys, m.id)
    assert run["state"] == states.SUCCESS and run["result"] == "3" and run["runtime_ms"] == "7"
    assert int(run["finished_at"]) >= int(run["started_at"])
    assert "error" not in run  # a success after retries shows no stale error
    assert r.xlen(entry.stream) == 0 and pending(r, entry.stream) == 0
    assert 0 < r.ttl(keys.run(m.id)) <= LIMITS.result_ttl
    assert events(r, keys, m.id)[-1] == states.SUCCESS
    assert published(done) == [b"SUCCESS"]


def test_finish_of_a_finished_run_only_acks(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m, entry = started(r, scripts, keys)
    assert scripts(finish(keys, m, entry, result=b"3"))
    before, seen = record(r, keys, m.id), events(r, keys, m.id)
    duplicate: Any = r.xadd(entry.stream, {"env": encode_envelope(m), "body": BODY})
    again = delivered(r, scripts, keys, m)
    assert again.id == duplicate.decode()
    done = listen(keys.done_channel(m.id))
    assert scripts(finish(keys, m, again, states.FAILURE, error=b"late")) is False
    assert record(r, keys, m.id) == before
    assert r.xlen(entry.stream) == 0 and pending(r, entry.stream) == 0  # acked all the same
    assert events(r, keys, m.id) == seen
    assert published(done, timeout=0.3) == []


def test_finish_with_an_unknown_entry_still_stores_the_outcome(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    unknown = StreamEntry(entry.stream, "1-1", {})
    assert scripts(finish(keys, m, unknown)) is True
    assert record(r, keys, m.id)["state"] == states.SUCCESS
    assert pending(r, entry.stream) == 1  # the real entry is left alone


def test_finish_dead_writes_the_dead_letter_and_keeps_the_record(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    assert scripts(finish(keys, m, entry, states.DEAD, error=b'{"type": "DeliveryLimitExceeded"}'))
    part = keys.partition(m.id)
    letters: Any = r.xrange(keys.dead(part, QUEUE))
    [(letter_id, letter)] = letters
    assert letter[b"id"] == m.id.encode() and letter[b"env"] == encode_envelope(m)
    assert letter[b"body"] == BODY and letter[b"error"] == b'{"type": "DeliveryLimitExceeded"}'
    run = record(r, keys, m.id)
    assert run["state"] == states.DEAD and run["dead_entry"] == letter_id.decode()
    assert int(letter[b"at"]) == int(run["finished_at"])
    assert r.ttl(keys.run(m.id)) == -1  # kept until requeued or purged
    assert pending(r, entry.stream) == 0


# -- finish with follow-ups (chains) --------------------------------------------------------------
def chained(keys: Keys, m: Message) -> Message:
    """A run of ``m``'s partition, as the next link of a chain: submitted by m's finish."""
    return message(keys, part=keys.partition(m.id), parent_id=m.id, root_id=m.id)


def test_finish_submits_the_next_link_with_the_outcome_and_only_once(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    nxt = chained(keys, m)
    then = plans.Follow(submit=[Submission(nxt, b'{"args": [3, 4]}')])
    call = plans.finish(keys, LIMITS, m, entry.stream, entry.id, states.SUCCESS, 7, {}, then)
    assert scripts(call) is True
    assert record(r, keys, m.id)["state"] == states.SUCCESS
    link = record(r, keys, nxt.id)
    assert link["state"] == states.PENDING and link["parent_id"] == m.id
    assert link["body"] == '{"args": [3, 4]}'
    queued = delivered(r, scripts, keys, nxt)
    assert decode_envelope(queued.fields[b"env"]) == nxt
    assert scripts(call) is False  # the same finish again (a redelivery): nothing new
    stream = keys.stream(keys.partition(nxt.id), QUEUE, DEFAULT_PRIORITY)
    assert r.xlen(stream) == 1 and events(r, keys, nxt.id) == [states.PENDING]


def test_finish_ends_the_later_links_with_the_failure(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m, entry = started(r, scripts, keys)
    later = [chained(keys, m), chained(keys, m)]
    done = listen(keys.done_channel(later[1].id))
    error = b'{"type": "ValueError", "message": "boom", "traceback": null}'
    then = plans.Follow(end=later, end_fields={"error": error})
    call = plans.finish(
        keys, LIMITS, m, entry.stream, entry.id, states.FAILURE, 7, {"error": error}, then
    )
    assert scripts(call) is True
    for link in later:
        run = record(r, keys, link.id)
        assert run["state"] == states.FAILURE and run["error"] == error.decode()
        assert run["task"] == "t.add" and run["queue"] == QUEUE and "runtime_ms" not in run
        assert 0 < r.ttl(keys.run(link.id)) <= LIMITS.result_ttl
        assert events(r, keys, link.id) == [states.FAILURE]
    assert published(done) == [b"FAILURE"]


def test_a_follow_up_of_another_partition_is_refused_before_anything_is_sent(
    r: redis.Redis, scripts: Scripts
) -> None:
    keys = Keys("celeriac", 4)
    m, entry = started(r, scripts, keys)
    other = message(keys, part=(keys.partition(m.id) + 1) % 4)
    then = plans.Follow(submit=[Submission(other, BODY)])
    with pytest.raises(ValueError, match="not of partition"):
        plans.finish(keys, LIMITS, m, entry.stream, entry.id, states.SUCCESS, 7, {}, then)


def chord_of(
    scripts: Scripts, keys: Keys, size: int
) -> tuple[Message, list[Message], plans.ChordMember]:
    """An open chord of ``size`` header runs (submitted) and its body (not yet)."""
    body = message(keys, task="t.sum", chord_body=True)
    assert scripts(plans.chord_open(keys, Submission(body, BODY), size, "application/json"))
    part = keys.partition(body.id)
    members = [message(keys, part=part) for _ in range(size)]
    for m in members:
        assert submit(scripts, keys, m)
    return body, members, plans.ChordMember(body=body, index=0, error=b"")


def queued_entry(r: redis.Redis, keys: Keys, m: Message) -> StreamEntry:
    """``m``'s stream entry, looked up without reading it as a consumer."""
    stream = keys.stream(keys.partition(m.id), m.queue, m.priority)
    entries: Any = r.xrange(stream)
    [(entry_id, fields)] = [e for e in entries if decode_envelope(e[1][b"env"]).id == m.id]
    return StreamEntry(stream, entry_id.decode(), fields)


def member_finish(
    r: redis.Redis, scripts: Scripts, keys: Keys, m: Message, body: Message, index: int, **kw: Any
) -> bool:
    entry = queued_entry(r, keys, m)
    assert start(scripts, keys, m).verdict == "STARTED"
    state = kw.pop("state", states.SUCCESS)
    member = plans.ChordMember(body=body, index=index, error=kw.pop("error", b""))
    call = plans.finish(
        keys, LIMITS, m, entry.stream, entry.id, state, 1, kw, plans.Follow(chord=member)
    )
    return scripts(call)


def test_the_last_chord_member_submits_the_body_once_with_results_in_order(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    body, members, _ = chord_of(scripts, keys, 3)
    assert scripts(plans.chord_open(keys, Submission(body, BODY), 3, "x")) is False  # once
    for index in (2, 0):
        assert member_finish(r, scripts, keys, members[index], body, index, result=f"{index}")
    assert not r.exists(keys.run(body.id))  # one member still running
    assert member_finish(r, scripts, keys, members[1], body, 1, result="1")
    run = record(r, keys, body.id)
    assert run["state"] == states.PENDING and run["body"] == BODY.decode()
    assert decode_envelope(queued_entry(r, keys, body).fields[b"env"]).chord_body is True
    header = scripts(plans.chord_read(keys, body.id))
    assert header == plans.ChordResults("application/json", [b"0", b"1", b"2"])
    assert 0 < r.ttl(keys.chord(body.id)) <= LIMITS.result_ttl


def test_a_redelivered_chord_member_is_not_counted_twice(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    body, members, member = chord_of(scripts, keys, 2)
    m = members[0]
    entry = queued_entry(r, keys, m)
    assert start(scripts, keys, m).verdict == "STARTED"
    then = plans.Follow(chord=member)
    call = plans.finish(keys, LIMITS, m, entry.stream, entry.id, states.SUCCESS, 1, {}, then)
    assert scripts(call) is True
    assert scripts(call) is False  # its finish again: the outcome is there, nothing counts
    assert r.hget(keys.chord(body.id), "left") == b"1"
    assert not r.exists(keys.run(body.id))


def test_the_first_failing_chord_member_queues_the_body_once_to_fail(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    body, members, _ = chord_of(scripts, keys, 3)
    error = b'{"type": "ChordError", "message": "member 1 failed", "traceback": null}'
    assert member_finish(r, scripts, keys, members[0], body, 0, result="0")
    assert member_finish(r, scripts, keys, members[1], body, 1, state=states.FAILURE, error=error)
    stream = keys.stream(keys.partition(body.id), QUEUE, DEFAULT_PRIORITY)

    def queued() -> int:
        return sum(decode_envelope(f[b"env"]).id == body.id for _, f in r.xrange(stream))

    assert queued() == 1  # at once, not when the header ends: its worker fails it
    assert record(r, keys, body.id)["state"] == states.PENDING
    assert scripts(plans.chord_read(keys, body.id)) == plans.ChordResults(
        "application/json", [], error
    )
    assert member_finish(r, scripts, keys, members[2], body, 2, result="2")
    assert queued() == 1  # the last member does not queue it again
    assert r.hget(keys.chord(body.id), "left") == b"0"


def test_reading_a_missing_chord_gives_none(scripts: Scripts, keys: Keys) -> None:
    assert scripts(plans.chord_read(keys, new_id())) is None


# -- step -----------------------------------------------------------------------------------------
def test_step_stores_an_outcome_then_starts_the_next_run(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    a, entry_a = started(r, scripts, keys)
    b = submitted(scripts, keys, part=keys.partition(a.id))
    delivered(r, scripts, keys, b)
    then = plans.start(keys, LIMITS, b, WORKER, 0)
    assert scripts(plans.step(finish(keys, a, entry_a), then)) == (
        True,
        Start("STARTED", 1, 1, b""),
    )
    assert record(r, keys, a.id)["state"] == states.SUCCESS
    assert record(r, keys, b.id)["state"] == states.STARTED
    assert in_stream(r, entry_a.stream) == [b.id]


def test_step_stores_an_outcome_then_fetches(r: redis.Redis, scripts: Scripts, keys: Keys) -> None:
    a, entry_a = started(r, scripts, keys)
    part = keys.partition(a.id)
    b = submitted(scripts, keys, part=part)
    then = plans.fetch(keys.streams(part, QUEUE), "c1", 10, False)
    stored, entries = scripts(plans.step(finish(keys, a, entry_a), then))
    assert stored is True and entries is not None
    assert [decode_envelope(e.fields[b"env"]).id for e in entries] == [b.id]
    assert record(r, keys, a.id)["state"] == states.SUCCESS
    assert pending(r, entry_a.stream) == 1  # b's, now read
    # stored already: False; nothing to store: None; nothing after: None
    assert scripts(plans.step(finish(keys, a, None), None)) == (False, None)
    assert scripts(plans.step(None, then)) == (None, [])


def test_a_cluster_refuses_a_step_across_partitions(cluster_client: redis.Redis) -> None:
    """Why the consumer stores an outcome of another partition on its own: the cluster
    refuses one call whose keys are in two slots (so the tests above, which pass on it,
    really keep each call in one slot)."""
    keys, scripts = Keys("celeriac", 4), Scripts(cluster_client)
    a, entry_a = started(cluster_client, scripts, keys)
    other = (keys.partition(a.id) + 1) % 4
    then = plans.fetch(keys.streams(other, QUEUE), "c1", 10, False)
    with pytest.raises((redis.RedisError, RedisClusterException), match=r"(?i)slot"):
        scripts(plans.step(finish(keys, a, entry_a), then))
    assert record(cluster_client, keys, a.id)["state"] == states.STARTED  # nothing stored


# -- fetch ----------------------------------------------------------------------------------------
def queued_at(scripts: Scripts, keys: Keys, priorities: list[int]) -> None:
    for priority in priorities:
        submitted(scripts, keys, part=0, priority=priority)


def test_fetch_reads_the_highest_priority_first(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    queued_at(scripts, keys, [1, 9, 5])
    entries = fetch(r, scripts, keys, 0, count=2)
    assert [e.stream for e in entries] == [keys.stream(0, QUEUE, 9), keys.stream(0, QUEUE, 5)]
    assert pending(r, keys.stream(0, QUEUE, 1)) == 0  # left for the next read
    assert [e.stream for e in fetch(r, scripts, keys, 0)] == [keys.stream(0, QUEUE, 1)]


def test_a_fair_fetch_first_takes_one_of_every_priority(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    queued_at(scripts, keys, [9, 9, 9, 5, 1])
    entries = fetch(r, scripts, keys, 0, count=4, fair=True)
    assert [e.stream for e in entries] == [keys.stream(0, QUEUE, p) for p in (1, 5, 9, 9)]
    assert pending(r, keys.stream(0, QUEUE, 9)) == 2 and r.xlen(keys.stream(0, QUEUE, 9)) == 3


def test_an_unfair_fetch_drains_the_urgent_backlog_first(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    queued_at(scripts, keys, [9, 9, 9, 5, 1])
    entries = fetch(r, scripts, keys, 0, count=4)
    assert [e.stream for e in entries] == [keys.stream(0, QUEUE, p) for p in (9, 9, 9, 5)]


# -- retry ----------------------------------------------------------------------------------------
def retry(scripts: Scripts, keys: Keys, m: Message, entry: StreamEntry, **changes: Any) -> Message:
    retried = msgspec.structs.replace(m, retries=m.retries + 1, **changes)
    scripts(plans.retry(keys, LIMITS, retried, entry.stream, entry.id, b'{"type": "Boom"}', BODY))
    return retried


def test_retry_acks_and_waits_in_the_delayed_set(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    due = now_ms() + 5_000
    retried = retry(scripts, keys, m, entry, eta=due)
    part = keys.partition(m.id)
    assert r.zscore(keys.delayed(part, QUEUE), m.id) == due
    run = record(r, keys, m.id)
    assert run["state"] == states.RETRY and run["error"] == '{"type": "Boom"}'
    assert run["deliveries"] == "0" and run["env"] == encode_envelope(retried).decode()
    assert "finished_at" in run and run["attempts"] == "1"
    assert r.xlen(entry.stream) == 0 and pending(r, entry.stream) == 0
    assert events(r, keys, m.id)[-1] == states.RETRY
    # promoted and started again: a new round of deliveries, one more attempt
    assert scripts(plans.promote(keys, LIMITS, part, QUEUE, [m.id], due)) == 1
    assert start(scripts, keys, retried) == Start("STARTED", 2, 1, b"")


def test_retry_does_not_enforce_max_retries(r: redis.Redis, scripts: Scripts, keys: Keys) -> None:
    # the runner decides whether a run has retries left; the script schedules what it is given
    m, entry = started(r, scripts, keys, max_retries=0)
    retry(scripts, keys, m, entry, eta=now_ms() + 5_000)
    assert record(r, keys, m.id)["state"] == states.RETRY
    assert r.zscore(keys.delayed(keys.partition(m.id), QUEUE), m.id) is not None


def test_retry_of_a_run_finished_meanwhile_changes_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    # A duplicate delivery finished the run while this one was failing: finish.lua writes an
    # outcome once, so a late retry should only ack, not bring the run back as RETRY.
    m, entry = started(r, scripts, keys)
    assert scripts(finish(keys, m, None, result=b"3"))
    retry(scripts, keys, m, entry, eta=now_ms() + 5_000)
    assert record(r, keys, m.id)["state"] == states.SUCCESS
    assert r.zcard(keys.delayed(keys.partition(m.id), QUEUE)) == 0
    assert pending(r, entry.stream) == 0


# -- promote --------------------------------------------------------------------------------------
def promote(scripts: Scripts, keys: Keys, part: int, ids: list[str], now: int) -> int:
    return scripts(plans.promote(keys, LIMITS, part, QUEUE, ids, now))


def test_promote_moves_only_the_due_runs(r: redis.Redis, scripts: Scripts, keys: Keys) -> None:
    now = now_ms()
    soon = submitted(scripts, keys, part=0, eta=now + 1_000, priority=8)
    later = submitted(scripts, keys, part=0, eta=now + 60_000)
    assert promote(scripts, keys, 0, [soon.id, later.id], now + 2_000) == 1
    assert in_stream(r, keys.stream(0, QUEUE, 8)) == [soon.id]  # at the envelope's priority
    assert record(r, keys, soon.id)["state"] == states.PENDING
    assert events(r, keys, soon.id) == [states.SCHEDULED, states.PENDING]
    assert r.zrange(keys.delayed(0, QUEUE), 0, -1) == [later.id.encode()]
    assert record(r, keys, later.id)["state"] == states.SCHEDULED


def test_promote_drops_revoked_and_recordless_runs(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    now = now_ms()
    revoked = submitted(scripts, keys, part=0, eta=now + 1_000)
    expired = submitted(scripts, keys, part=0, eta=now + 1_000)
    r.hset(keys.run(revoked.id), "state", states.REVOKED)  # revoked, still in the delayed set
    r.delete(keys.run(expired.id))  # its record expired while it waited
    assert promote(scripts, keys, 0, [revoked.id, expired.id], now + 2_000) == 0
    assert r.zcard(keys.delayed(0, QUEUE)) == 0
    assert all(r.xlen(s) == 0 for s in keys.streams(0, QUEUE))
    assert record(r, keys, revoked.id)["state"] == states.REVOKED
    assert not r.exists(keys.run(expired.id))  # not brought back


@pytest.mark.parametrize("env", [b"not json", b'{"priority": 42}', b'{"priority": "high"}', b"[]"])
def test_promote_falls_back_to_the_default_priority(
    r: redis.Redis, scripts: Scripts, keys: Keys, env: bytes
) -> None:
    now = now_ms()
    m = submitted(scripts, keys, part=0, eta=now + 1_000, priority=2)
    r.hset(keys.run(m.id), "env", env)
    assert promote(scripts, keys, 0, [m.id], now + 2_000) == 1
    raw: Any = r.xrange(keys.stream(0, QUEUE, DEFAULT_PRIORITY))
    assert [f[b"env"] for _, f in raw] == [env]
    assert r.xlen(keys.stream(0, QUEUE, 2)) == 0


def test_promote_of_an_id_another_caller_moved_does_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    now = now_ms()
    m = submitted(scripts, keys, part=0, eta=now + 1_000)
    assert promote(scripts, keys, 0, [m.id], now + 2_000) == 1
    assert promote(scripts, keys, 0, [m.id], now + 2_000) == 0  # read before the first moved it
    never = message(keys, part=0)
    assert promote(scripts, keys, 0, [never.id], now + 2_000) == 0
    assert in_stream(r, keys.stream(0, QUEUE, 5)) == [m.id]
    assert not r.exists(keys.run(never.id))


def test_promote_drops_a_run_finished_meanwhile(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    # Retried, then finished by a duplicate delivery before its retry was due.
    m, entry = started(r, scripts, keys, part=0)
    retry(scripts, keys, m, entry, eta=now_ms() + 1_000)
    assert scripts(finish(keys, m, None, result=b"3"))
    assert promote(scripts, keys, 0, [m.id], now_ms() + 2_000) == 0
    assert record(r, keys, m.id)["state"] == states.SUCCESS
    assert r.zcard(keys.delayed(0, QUEUE)) == 0


# -- revoke ---------------------------------------------------------------------------------------
def revoke(scripts: Scripts, keys: Keys, run_id: str, terminate: bool = False) -> Verdict:
    return scripts(plans.revoke(keys, LIMITS, run_id, QUEUE, terminate))


def test_revoke_of_an_unknown_run_is_missing_and_marks_it(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    run_id = new_id()
    assert revoke(scripts, keys, run_id) == Verdict("MISSING", "")
    # marked all the same: a later link of a chain, submitted later, never starts
    assert r.zscore(keys.revoked(keys.partition(run_id)), run_id) is not None
    assert not r.exists(keys.run(run_id))


def test_revoke_of_a_finished_run_changes_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    assert scripts(finish(keys, m, entry))
    before = record(r, keys, m.id)
    assert revoke(scripts, keys, m.id) == Verdict("FINISHED", states.SUCCESS)
    assert record(r, keys, m.id) == before
    assert r.zcard(keys.revoked(keys.partition(m.id))) == 0


@pytest.mark.parametrize("eta", [None, 60_000], ids=["queued", "delayed"])
def test_revoke_of_a_waiting_run_revokes_it(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen, eta: int | None
) -> None:
    m = submitted(scripts, keys, eta=eta and now_ms() + eta)
    part = keys.partition(m.id)
    r.zadd(keys.revoked(part), {"long-forgotten": 1})
    done = listen(keys.done_channel(m.id))
    was = states.SCHEDULED if eta else states.PENDING
    assert revoke(scripts, keys, m.id) == Verdict("REVOKED", was)
    run = record(r, keys, m.id)
    assert run["state"] == states.REVOKED and "finished_at" in run
    assert 0 < r.ttl(keys.run(m.id)) <= LIMITS.result_ttl
    kept_until = r.zscore(keys.revoked(part), m.id)
    assert kept_until is not None and kept_until >= now_ms() + (LIMITS.result_ttl - 5) * 1000
    assert r.zscore(keys.revoked(part), "long-forgotten") is None  # pruned on the way
    assert events(r, keys, m.id)[-1] == states.REVOKED
    assert published(done) == [b"REVOKED"]
    assert r.zscore(keys.delayed(part, QUEUE), m.id) is None  # a delayed one leaves its set


def test_revoke_of_a_running_run_marks_it(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m, _ = started(r, scripts, keys)
    control = listen(keys.control)
    assert revoke(scripts, keys, m.id) == Verdict("RUNNING", states.STARTED)
    assert record(r, keys, m.id)["state"] == states.STARTED  # it runs on
    assert r.zscore(keys.revoked(keys.partition(m.id)), m.id) is not None
    assert published(control, timeout=0.3) == []


def test_revoke_with_terminate_tells_the_workers(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m, _ = started(r, scripts, keys)
    scripts(plans.progress(keys, LIMITS, m, "PROGRESS", b'{"done": 1}'))
    control = listen(keys.control)
    assert revoke(scripts, keys, m.id, terminate=True) == Verdict("TERMINATING", "PROGRESS")
    assert [json.loads(x) for x in published(control)] == [{"op": "terminate", "run": m.id}]
    assert record(r, keys, m.id)["state"] == "PROGRESS"  # the worker records the outcome
    assert r.zscore(keys.revoked(keys.partition(m.id)), m.id) is not None


# -- requeue --------------------------------------------------------------------------------------
def dead(
    r: redis.Redis, scripts: Scripts, keys: Keys, **fields: Any
) -> tuple[Message, StreamEntry]:
    m, entry = started(r, scripts, keys, **fields)
    r.hset(keys.run(m.id), "killed", b"{}")  # cleared by the requeue, like the error
    assert scripts(finish(keys, m, entry, states.DEAD, error=b'{"type": "Dead"}'))
    return m, entry


def test_requeue_of_an_unknown_or_live_run_changes_nothing(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    missing = new_id()
    assert scripts(plans.requeue(keys, LIMITS, missing, QUEUE)) == Verdict("MISSING", "")
    assert not r.exists(keys.run(missing))
    live = submitted(scripts, keys)
    before = record(r, keys, live.id)
    assert scripts(plans.requeue(keys, LIMITS, live.id, QUEUE)) == Verdict(
        "NOT_DEAD", states.PENDING
    )
    assert record(r, keys, live.id) == before
    assert r.xlen(keys.stream(keys.partition(live.id), QUEUE, 5)) == 1


def test_requeue_of_a_dead_run_of_another_queue_is_not_dead(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, _ = dead(r, scripts, keys)
    assert scripts(plans.requeue(keys, LIMITS, m.id, "elsewhere")) == Verdict(
        "NOT_DEAD", states.DEAD
    )
    assert record(r, keys, m.id)["state"] == states.DEAD
    assert r.xlen(keys.dead(keys.partition(m.id), QUEUE)) == 1


def test_requeue_puts_a_dead_run_back_as_a_fresh_round(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, _ = dead(r, scripts, keys, priority=3)
    part = keys.partition(m.id)
    assert scripts(plans.requeue(keys, LIMITS, m.id, QUEUE)) == Verdict("REQUEUED", states.DEAD)
    assert in_stream(r, keys.stream(part, QUEUE, 3)) == [m.id]
    assert r.xlen(keys.dead(part, QUEUE)) == 0
    run = record(r, keys, m.id)
    assert run["state"] == states.PENDING and run["deliveries"] == "0"
    cleared = {"error", "exc", "exc_sig", "finished_at", "runtime_ms", "killed", "dead_entry"}
    assert not cleared & set(run)
    assert events(r, keys, m.id)[-1] == states.PENDING
    assert start(scripts, keys, m, max_deliveries=1).verdict == "STARTED"


# -- rate limit and progress ----------------------------------------------------------------------
def test_rate_takes_one_slot_per_interval(r: redis.Redis, scripts: Scripts) -> None:
    keys = Keys("celeriac", 1)
    assert scripts(plans.rate(keys, "t.add", 100)) == 0
    wait = scripts(plans.rate(keys, "t.add", 100))
    assert 0 < wait <= 100
    assert 0 < r.pttl(keys.rate("t.add")) <= 100 * 2 + 1000
    assert scripts(plans.rate(keys, "t.other", 100)) == 0  # another task has its own
    time.sleep(wait / 1000 + 0.01)
    assert scripts(plans.rate(keys, "t.add", 100)) == 0


def test_progress_shows_a_custom_state_until_the_run_is_finished(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    m, entry = started(r, scripts, keys)
    assert scripts(plans.progress(keys, LIMITS, m, "PROGRESS", b'{"done": 3}')) is True
    run = record(r, keys, m.id)
    assert run["state"] == "PROGRESS" and run["meta"] == '{"done": 3}'
    assert events(r, keys, m.id)[-1] == "PROGRESS"
    assert scripts(finish(keys, m, entry))
    assert scripts(plans.progress(keys, LIMITS, m, "PROGRESS", b'{"done": 4}')) is False
    run = record(r, keys, m.id)
    assert run["state"] == states.SUCCESS and run["meta"] == '{"done": 3}'
    assert events(r, keys, m.id)[-1] == states.SUCCESS


# -- webhooks -------------------------------------------------------------------------------------
VIEW = b'{"url": "https://x.test/h", "state": "pending", "attempts": 0}'


def enqueue_webhook(scripts: Scripts, keys: Keys, run_id: str) -> bool:
    return scripts(plans.webhook_enqueue(keys, run_id, "https://x.test/h", b"{}", 3600, VIEW))


def test_webhook_enqueue_acts_once(r: redis.Redis, scripts: Scripts, keys: Keys) -> None:
    m = submitted(scripts, keys)
    part = keys.partition(m.id)
    assert enqueue_webhook(scripts, keys, m.id) is True
    assert record(r, keys, m.id)["webhook"] == VIEW.decode()
    delivery: Any = r.hgetall(keys.webhook(m.id))
    assert delivery[b"url"] == b"https://x.test/h" and delivery[b"attempts"] == b"0"
    assert delivery[b"log"] == b"[]" and b"first_at" in delivery
    assert 0 < r.ttl(keys.webhook(m.id)) <= 3600
    queued_at = r.zscore(keys.webhooks_fresh(part), m.id)
    assert enqueue_webhook(scripts, keys, m.id) is False
    assert r.zscore(keys.webhooks_fresh(part), m.id) == queued_at
    # delivered and gone: the run's own "webhook" field still says it had one
    assert scripts(plans.webhook_claim(keys, part, now_ms(), 30_000, 10)) == [m.id]
    assert scripts(plans.webhook_record(keys, m.id, 1, b"[]", VIEW, None))
    assert not r.exists(keys.webhook(m.id))
    assert enqueue_webhook(scripts, keys, m.id) is False
    assert not r.exists(keys.webhook(m.id))


def webhooks(scripts: Scripts, keys: Keys, n: int) -> list[str]:
    """``n`` runs of partition 0 with a webhook queued, oldest first."""
    ids = []
    for _ in range(n):
        ids.append(submitted(scripts, keys, part=0).id)
        assert enqueue_webhook(scripts, keys, ids[-1])
    return ids


def claim(scripts: Scripts, keys: Keys, now: int, limit: int) -> list[str]:
    return scripts(plans.webhook_claim(keys, 0, now, 30_000, limit))


def overdue(scripts: Scripts, keys: Keys, n: int, now: int) -> list[str]:
    """``n`` webhooks whose first attempt failed, each overdue for its second."""
    ids = webhooks(scripts, keys, n)
    assert set(claim(scripts, keys, now, n)) == set(ids)
    for run_id in ids:
        assert scripts(plans.webhook_record(keys, run_id, 1, b"[{}]", VIEW, now - 1))
    return ids


def is_claim(claimed: list[str], fresh: list[str], retrying: list[str], n_fresh: int) -> bool:
    """Whether the claim is ``n_fresh`` first attempts, then retries (ids made in one
    millisecond tie in either set, so only membership is checked)."""
    return set(claimed[:n_fresh]) <= set(fresh) and set(claimed[n_fresh:]) <= set(retrying)


def test_webhook_claim_keeps_half_of_every_claim_for_first_attempts(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    now = now_ms()
    retrying = overdue(scripts, keys, 6, now)
    fresh = webhooks(scripts, keys, 6)
    claimed = claim(scripts, keys, now, 4)
    assert len(claimed) == 4 and is_claim(claimed, fresh, retrying, 2)
    for run_id in claimed:  # leased: none is claimed twice
        assert r.zscore(keys.webhooks_due(0), run_id) == now + 30_000
    assert r.zcard(keys.webhooks_fresh(0)) == 4


def test_webhook_claim_gives_first_attempts_the_slots_retries_leave(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    now = now_ms()
    [retrying] = overdue(scripts, keys, 1, now)
    fresh = webhooks(scripts, keys, 6)
    claimed = claim(scripts, keys, now, 4)
    assert len(claimed) == 4 and is_claim(claimed, fresh, [retrying], 3)
    assert r.zcard(keys.webhooks_fresh(0)) == 3


def test_webhook_claim_gives_retries_the_slots_first_attempts_leave(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    now = now_ms()
    retrying = overdue(scripts, keys, 3, now)
    fresh = webhooks(scripts, keys, 1)
    claimed = claim(scripts, keys, now, 4)
    assert len(claimed) == 4 and is_claim(claimed, fresh, retrying, 1)
    assert claim(scripts, keys, now, 4) == []  # every one is leased now
    assert r.zcard(keys.webhooks_fresh(0)) == 0


def test_webhook_record_stores_each_attempt_number_once(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    [run_id] = webhooks(scripts, keys, 1)
    claim(scripts, keys, now_ms(), 1)
    view = b'{"url": "https://x.test/h", "state": "retrying", "attempts": 1}'
    assert (
        scripts(plans.webhook_record(keys, run_id, 2, b"[{}, {}]", view, 1)) is False
    )  # skips one
    assert scripts(plans.webhook_record(keys, run_id, 1, b"[{}]", view, 12_345)) is True
    delivery: Any = r.hgetall(keys.webhook(run_id))
    assert delivery[b"attempts"] == b"1" and delivery[b"log"] == b"[{}]"
    assert r.zscore(keys.webhooks_due(0), run_id) == 12_345
    assert record(r, keys, run_id)["webhook"] == view.decode()
    assert scripts(plans.webhook_record(keys, run_id, 1, b"[{}]", VIEW, 99)) is False  # raced
    assert r.zscore(keys.webhooks_due(0), run_id) == 12_345
    # the last attempt ends the delivery; a record that expired meanwhile stays gone
    r.delete(keys.run(run_id))
    assert scripts(plans.webhook_record(keys, run_id, 2, b"[{}, {}]", view, None)) is True
    assert not r.exists(keys.webhook(run_id)) and not r.exists(keys.run(run_id))
    assert r.zscore(keys.webhooks_due(0), run_id) is None
    assert scripts(plans.webhook_record(keys, run_id, 3, b"[]", view, None)) is False


def test_webhook_release_hands_back_only_the_claims_still_held(
    r: redis.Redis, scripts: Scripts, keys: Keys
) -> None:
    held, recorded = webhooks(scripts, keys, 2)
    now = now_ms()
    claim(scripts, keys, now, 2)
    lease_end = now + 30_000
    assert scripts(plans.webhook_record(keys, recorded, 1, b"[{}]", VIEW, now + 60_000))
    [call] = plans.webhook_release(keys, now, [(held, lease_end), (recorded, lease_end)])
    assert scripts(call) == 1
    assert r.zscore(keys.webhooks_due(0), held) == now
    assert r.zscore(keys.webhooks_due(0), recorded) == now + 60_000  # its attempt moved it
    [stale] = plans.webhook_release(keys, now + 5, [(held, lease_end)])  # a lapsed lease
    assert scripts(stale) == 0 and r.zscore(keys.webhooks_due(0), held) == now


def test_webhook_release_makes_one_call_per_partition() -> None:
    keys = Keys("celeriac", 4)
    claims = [(id_in(keys, part), 1) for part in (0, 1, 1, 3)]
    calls = plans.webhook_release(keys, 0, claims)
    assert sorted(c.keys[0] for c in calls) == sorted(keys.webhooks_due(p) for p in (0, 1, 3))


# -- schedules ------------------------------------------------------------------------------------
def schedule_state(r: redis.Redis, keys: Keys, schedule_id: str) -> Any:
    raw = r.hget(keys.schedule_state, schedule_id)
    return None if raw is None else json.loads(raw)


def test_schedule_fired_never_moves_the_last_fire_backwards(
    r: redis.Redis, scripts: Scripts
) -> None:
    keys = Keys("celeriac", 1)

    def fired(run_id: str, fire: int | None) -> bool:
        return scripts(plans.schedule_fired(keys, "nightly", run_id, 5_000, fire, recent=2))

    assert fired("r0", 1_000) is False  # no such schedule
    assert schedule_state(r, keys, "nightly") is None
    r.hset(keys.schedules, "nightly", b"{}")
    assert fired("r1", 1_000) is True
    assert fired("r2", 2_000) is True
    assert fired("late", 1_500) is False  # a deposed leader's late fire
    assert fired("r3", 3_000) is True
    state = schedule_state(r, keys, "nightly")
    assert state["last_fire"] == 3_000 and state["recent"] == ["r3", "r2"]  # newest first, capped
    assert fired("manual", None) is True
    state = schedule_state(r, keys, "nightly")
    assert state["last_run_id"] == "manual" and state["last_run_at"] == 5_000
    assert state["last_fire"] == 3_000 and state["recent"] == ["r3", "r2"]


def test_schedule_upsert_writes_static_definitions_unless_runtime_edits_own_them(
    r: redis.Redis, scripts: Scripts
) -> None:
    keys = Keys("celeriac", 1)

    def upsert(schedule_id: str, source: str, app: str, every: int) -> bool:
        definition = json.dumps({"source": source, "app": app, "every": every}).encode()
        return scripts(plans.schedule_upsert(keys, schedule_id, definition, app))

    assert upsert("s", "static", "a", 10) is True
    assert upsert("s", "static", "a", 10) is False  # unchanged: the version does not move
    assert r.get(keys.schedules_version) == b"1"
    assert upsert("s", "static", "a", 20) is True
    assert upsert("s", "static", "b", 30) is False  # another app's
    r.hset(keys.schedules, "edited", json.dumps({"source": "api", "app": "a", "every": 1}))
    assert upsert("edited", "static", "a", 40) is False
    assert json.loads(r.hget(keys.schedules, "s"))["every"] == 20  # type: ignore[arg-type]
    assert json.loads(r.hget(keys.schedules, "edited"))["source"] == "api"  # type: ignore[arg-type]
    assert r.get(keys.schedules_version) == b"2"


def test_a_lease_is_renewed_and_released_only_by_its_holder(
    r: redis.Redis, scripts: Scripts
) -> None:
    lease = Keys("celeriac", 1).scheduler_leader
    assert scripts(plans.lease_renew(lease, "me", 10_000)) is False  # nobody holds it
    r.set(lease, "me", px=1_000)
    assert scripts(plans.lease_renew(lease, "other", 10_000)) is False
    assert r.pttl(lease) <= 1_000
    assert scripts(plans.lease_renew(lease, "me", 10_000)) is True
    assert r.pttl(lease) > 1_000
    assert scripts(plans.lease_release(lease, "other")) is False
    assert r.get(lease) == b"me"
    assert scripts(plans.lease_release(lease, "me")) is True
    assert not r.exists(lease)


def test_revoke_of_a_queued_chain_link_ends_its_later_links(
    r: redis.Redis, scripts: Scripts, keys: Keys, listen: Listen
) -> None:
    m = submitted(scripts, keys)
    later = [chained(keys, m), chained(keys, m)]
    done = listen(keys.done_channel(later[1].id))
    stream = keys.stream(keys.partition(m.id), QUEUE, DEFAULT_PRIORITY)
    then = plans.Follow(end=later, end_state=states.REVOKED)
    ended = plans.finish(keys, LIMITS, m, stream, "", states.REVOKED, None, {}, then)
    call = plans.revoke(keys, LIMITS, m.id, QUEUE, False, ended)
    assert scripts(call) == Verdict("REVOKED", states.PENDING)
    assert record(r, keys, m.id)["state"] == states.REVOKED
    assert events(r, keys, m.id) == [states.PENDING, states.REVOKED]
    for link in later:
        run = record(r, keys, link.id)
        assert run["state"] == states.REVOKED and run["task"] == "t.add"
        assert events(r, keys, link.id) == [states.REVOKED]
    assert published(done) == [b"REVOKED"]
