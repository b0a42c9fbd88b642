"""Webhooks through a real gateway to a real receiver on 127.0.0.1 (signatures verified).
Those marked ``cluster`` also run on the local Redis Cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.webhooks.dispatch import CONCURRENCY, PER_RECEIVER
from gateway.webhooks.pace import TokenBucket
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys
from tests.conftest import Gateway
from tests.gateway.conftest import LOCAL_HOOKS, WEBHOOK_SECRET, finish, history, register
from tests.gateway.receiver import Receiver

FAST = {
    "webhook_secret": WEBHOOK_SECRET,
    "webhook_allow": LOCAL_HOOKS,
    "webhook_backoff": 0.2,
    "webhook_max_attempts": 30,
    "webhook_max_span": 60,
    "webhook_timeout": 2,
}


def add(x: int, y: int) -> int:
    return x + y


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(WEBHOOK_SECRET).start()
    yield rec
    rec.stop()


@pytest.fixture
def hooks_gw(
    redis_url: str, make_gateway: Callable[..., Gateway], r: redis.Redis, keys: Keys
) -> Gateway:
    """A gateway that sends webhooks fast, over 1 and over 4 partitions."""
    register(r, add)
    return make_gateway(redis_url=redis_url, partitions=keys.partitions, **FAST)


def due(r: redis.Redis, keys: Keys) -> dict[bytes, float]:
    """Every partition's due zset: run id -> when its next attempt is due (ms)."""
    return {
        run_id: score
        for part in keys.all_partitions
        for run_id, score in r.zrange(keys.webhooks_due(part), 0, -1, withscores=True)
    }


def submit(client: httpx.Client, callback: str, header: bool = False) -> str:
    if header:
        resp = client.post(
            "/tasks/add", json={"args": [1, 2]}, headers={"X-Callback-Url": callback}
        )
    else:
        resp = client.post("/tasks/add", json={"args": [1, 2], "callback_url": callback})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s: {check}")


def webhook_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    webhook: dict[str, Any] = client.get(f"/runs/{run_id}").json()["webhook"]
    return webhook


def settled(client: httpx.Client, run_id: str) -> dict[str, Any] | None:
    webhook = webhook_of(client, run_id)
    return webhook if webhook["state"] != "pending" else None


@pytest.mark.cluster
def test_terminal_state_is_posted_signed(
    r: redis.Redis, hooks_gw: Gateway, receiver: Receiver, keys: Keys
) -> None:
    client = hooks_gw.client
    run_id = submit(client, f"{receiver.url}/hook")
    assert webhook_of(client, run_id) == {
        "url": f"{receiver.url}/hook",
        "state": "pending",
        "attempts": [],
    }
    finish(r, run_id, keys=keys)
    webhook = wait_for(lambda: settled(client, run_id))
    assert webhook["state"] == "delivered"
    [attempt] = webhook["attempts"]
    assert attempt["status"] == 204 and attempt["error"] is None
    assert attempt["at"].endswith("Z") and attempt["latency_ms"] >= 0
    [hit] = receiver.hits
    assert hit.error is None, hit.error
    assert hit.headers["webhook-id"] == f"msg_{run_id}"
    assert hit.verified["id"] == run_id and hit.verified["state"] == "SUCCESS"
    assert hit.verified["result"] == 5
    assert hit.headers["content-type"] == "application/json"


@pytest.mark.cluster
def test_header_callback_and_retries_keep_the_webhook_id(
    r: redis.Redis, hooks_gw: Gateway, receiver: Receiver, keys: Keys
) -> None:
    receiver.reply = lambda path, n: (500, {}) if n < 3 else (200, {})
    run_id = submit(hooks_gw.client, f"{receiver.url}/h", header=True)
    finish(r, run_id, state="FAILURE", keys=keys)
    webhook = wait_for(lambda: settled(hooks_gw.client, run_id))
    assert webhook["state"] == "delivered"
    assert [a["status"] for a in webhook["attempts"]] == [500, 500, 200]
    assert webhook["attempts"][0]["error"] == "HTTP 500"
    ids = {h.headers["webhook-id"] for h in receiver.hits}
    stamps = [h.headers["webhook-timestamp"] for h in receiver.hits]
    assert ids == {f"msg_{run_id}"} and len(stamps) == 3
    assert all(h.error is None for h in receiver.hits)
    bodies = {h.body for h in receiver.hits}
    assert len(bodies) == 1  # the payload is frozen: every retry sends the same bytes


@pytest.mark.cluster
def test_gone_disables_the_delivery(
    r: redis.Redis, hooks_gw: Gateway, receiver: Receiver, keys: Keys
) -> None:
    receiver.reply = lambda path, n: (410, {})
    run_id = submit(hooks_gw.client, f"{receiver.url}/gone")
    finish(r, run_id, keys=keys)
    webhook = wait_for(lambda: settled(hooks_gw.client, run_id))
    assert webhook["state"] == "disabled" and len(webhook["attempts"]) == 1
    time.sleep(0.6)
    assert len(receiver.hits) == 1
    assert not due(r, keys) and not r.exists(keys.webhook(run_id))


def test_redirect_is_a_failure_and_never_followed(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    register(r, add)
    gw = make_gateway(
        redis_url=redis_url, **{**FAST, "webhook_max_attempts": 3, "webhook_max_span": 1}
    )
    receiver.reply = lambda path, n: (302, {"Location": f"{receiver.url}/elsewhere"})
    run_id = submit(gw.client, f"{receiver.url}/moved")
    finish(r, run_id)
    webhook = wait_for(lambda: settled(gw.client, run_id))
    assert webhook["state"] == "failed"
    assert [a["status"] for a in webhook["attempts"]] == [302, 302, 302]
    assert "not followed" in webhook["attempts"][0]["error"]
    assert {h.path for h in receiver.hits} == {"/moved"}


@pytest.mark.cluster
def test_retry_after_is_honoured(
    r: redis.Redis, hooks_gw: Gateway, receiver: Receiver, keys: Keys
) -> None:
    receiver.reply = lambda path, n: (429, {"Retry-After": "1"}) if n == 1 else (204, {})
    run_id = submit(hooks_gw.client, f"{receiver.url}/busy")
    finish(r, run_id, keys=keys)
    webhook = wait_for(lambda: settled(hooks_gw.client, run_id))
    assert [a["status"] for a in webhook["attempts"]] == [429, 204]
    first, second = receiver.hits
    assert second.at - first.at >= 0.95  # not the 0.2 s backoff


@pytest.mark.cluster
def test_receiver_down_then_up_and_gateway_restarted(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], keys: Keys
) -> None:
    """Deliveries survive a receiver outage and a gateway restart in the middle of it."""
    register(r, add)
    receiver = Receiver(WEBHOOK_SECRET).start()
    url = receiver.url
    receiver.stop()  # down: connections refused
    first = make_gateway(redis_url=redis_url, partitions=keys.partitions, **FAST)
    ids = [submit(first.client, f"{url}/hook") for _ in range(20)]
    for run_id in ids:
        finish(r, run_id, keys=keys)
    wait_for(lambda: all(webhook_of(first.client, i)["attempts"] for i in ids))
    first.stop()
    second = make_gateway(redis_url=redis_url, partitions=keys.partitions, **FAST)
    time.sleep(1.0)
    receiver = Receiver(WEBHOOK_SECRET, port=receiver.port).start()
    try:
        # The first gateway handed back what it had claimed when it stopped.
        wait_for(lambda: len(receiver.delivered()) == len(ids), timeout=30)
        assert set(receiver.delivered()) == {f"msg_{i}" for i in ids}
        assert all(h.error is None for h in receiver.hits)
        for run_id in ids:
            webhook = wait_for(lambda i=run_id: settled(second.client, i))
            assert webhook["state"] == "delivered"
            assert webhook["attempts"][0]["status"] is None  # refused while down
            assert webhook["attempts"][-1]["status"] == 204
    finally:
        receiver.stop()


@pytest.mark.cluster
def test_a_stopping_gateway_hands_its_attempts_back(
    r: redis.Redis,
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    receiver: Receiver,
    keys: Keys,
) -> None:
    """Attempts in flight when a gateway stops are due again at once, not after the lease
    (50 s with a 20 s timeout), so another gateway makes them straight away."""
    register(r, add)
    settings = {"partitions": keys.partitions, **FAST}
    first = make_gateway(redis_url=redis_url, **{**settings, "webhook_timeout": 20})
    hold = threading.Event()
    receiver.reply = lambda path, n: (204, {}) if hold.wait(20) else (503, {})
    ids = [submit(first.client, f"{receiver.url}/held") for _ in range(6)]
    for run_id in ids:
        finish(r, run_id, keys=keys)
    wait_for(lambda: len(receiver.hits) == 6)  # every attempt is in flight, held
    first.stop()
    handed_back = due(r, keys)
    assert set(handed_back) == {i.encode() for i in ids}
    assert all(score <= now_ms() for score in handed_back.values())
    hold.set()
    second = make_gateway(redis_url=redis_url, **settings)
    for run_id in ids:
        webhook = wait_for(lambda i=run_id: settled(second.client, i), timeout=10)
        assert webhook["state"] == "delivered"
        assert [a["status"] for a in webhook["attempts"]] == [204]  # the cancelled one left none


def test_a_first_attempt_does_not_queue_behind_a_backlog_of_retries(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    """Retries to a receiver that is down pile up past what the attempt rate allows; a
    new webhook to a healthy receiver still goes out with the next claim."""
    register(r, add)
    gw = make_gateway(redis_url=redis_url, **{**FAST, "webhook_rate": 20})
    receiver.reply = lambda path, n: (503, {}) if path == "/down" else (204, {})
    ids = [submit(gw.client, f"{receiver.url}/down") for _ in range(60)]
    for run_id in ids:
        finish(r, run_id)
    failed_once = lambda: {h.headers["webhook-id"] for h in list(receiver.hits)}  # noqa: E731
    wait_for(lambda: len(failed_once()) == 60)  # and their retries are overdue at 20/s
    live = submit(gw.client, f"{receiver.url}/up")
    queued_at = time.time()
    finish(r, live)
    hit = wait_for(lambda: next((h for h in list(receiver.hits) if h.path == "/up"), None))
    behind = [h for h in list(receiver.hits) if h.path == "/down" and queued_at < h.at < hit.at]
    assert len(behind) <= 10  # one claim at most (0 or 1 seen); before: 41 of the backlog


def test_slots_all_held_by_slow_receivers_leave_the_gateway_serving(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway]
) -> None:
    """More deliveries due than attempt slots, to receivers that hold every request: each
    receiver gets at most its share of the slots, the dispatcher waits for a free one (it
    must not spin), and the API answers meanwhile."""
    register(r, add)
    gw = make_gateway(redis_url=redis_url, **{**FAST, "webhook_timeout": 20})
    release = threading.Event()
    held = lambda path, n: (204, {}) if release.wait(20) else (503, {})  # noqa: E731
    receivers = [Receiver(WEBHOOK_SECRET, reply=held).start() for _ in range(5)]
    try:
        ids = [submit(gw.client, f"{rec.url}/held") for _ in range(20) for rec in receivers]
        for run_id in ids:
            finish(r, run_id)
        hits = lambda: sum(len(rec.hits) for rec in receivers)  # noqa: E731
        wait_for(lambda: hits() >= CONCURRENCY)
        time.sleep(0.3)  # a spinning dispatcher would hold the event loop by now
        assert gw.client.get(f"/runs/{ids[-1]}").json()["webhook"]["state"] == "pending"
        assert hits() == CONCURRENCY  # no attempt past the slots
        assert all(len(rec.hits) <= PER_RECEIVER for rec in receivers)
    finally:
        release.set()
    try:
        wait_for(lambda: sum(len(rec.delivered()) for rec in receivers) == len(ids), 30)
    finally:
        for rec in receivers:
            rec.stop()


def test_a_slow_receiver_does_not_hold_up_another(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    register(r, add)
    gw = make_gateway(redis_url=redis_url, **{**FAST, "webhook_timeout": 20})
    release = threading.Event()
    slow = Receiver(WEBHOOK_SECRET, reply=lambda p, n: (204, {}) if release.wait(20) else (503, {}))
    slow.start()
    try:
        held = [submit(gw.client, f"{slow.url}/slow") for _ in range(CONCURRENCY + 8)]
        for run_id in held:
            finish(r, run_id)
        wait_for(lambda: len(slow.hits) >= PER_RECEIVER)
        other = submit(gw.client, f"{receiver.url}/fast")
        finish(r, other)
        webhook = wait_for(lambda: settled(gw.client, other), 10)  # the held ones take 20 s
        assert webhook["state"] == "delivered"
        assert len(slow.hits) == PER_RECEIVER
    finally:
        release.set()
        wait_for(lambda: len(slow.delivered()) == len(held), 30)
        slow.stop()


def test_token_bucket_spreads_a_backlog() -> None:
    now = [0.0]
    bucket = TokenBucket(100, 10, clock=lambda: now[0])
    assert bucket.wait(10) == 0  # a burst goes at once
    bucket.take(10)
    assert bucket.wait(10) == pytest.approx(0.1)  # then it refills at the rate
    assert bucket.wait(1) == pytest.approx(0.01)
    now[0] = 0.05
    assert bucket.wait(10) == pytest.approx(0.05)
    now[0] = 60.0
    assert bucket.wait(10) == 0 and bucket.wait(1_000) == 0  # never more than a burst saved
    bucket.take(10)
    assert bucket.wait(1) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",  # a name that resolves to loopback
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.org/hook",
        "not a url",
    ],
)
def test_ssrf_guard_refuses_private_targets(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], url: str
) -> None:
    register(r, add)
    gw = make_gateway(redis_url=redis_url, webhook_secret=WEBHOOK_SECRET)
    for headers, body in (({}, {"callback_url": url}), ({"X-Callback-Url": url}, {})):
        resp = gw.client.post("/tasks/add", json={"args": [1, 2], **body}, headers=headers)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "invalid_callback_url"
    resp = gw.client.post(
        "/tasks/add/batch",
        json={"items": [{"args": [1, 2]}, {"args": [1, 2], "callback_url": url}]},
    )
    assert resp.status_code == 422
    assert not history(r)  # nothing was queued


def test_allow_list_lets_local_receivers_in_and_no_secret_means_no_webhooks(
    r: redis.Redis, redis_url: str, make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    register(r, add)
    gw = make_gateway(redis_url=redis_url, **{**FAST, "webhook_allow": "10.0.0.0/8, localhost"})
    ok = gw.client.post("/tasks/add", json={"args": [1, 2], "callback_url": "http://10.1.2.3/h"})
    assert ok.status_code == 202
    named = f"http://localhost:{receiver.port}/named"
    run_id = submit(gw.client, named)
    finish(r, run_id)
    assert wait_for(lambda: settled(gw.client, run_id))["state"] == "delivered"
    assert receiver.hits[0].verified is not None
    plain = make_gateway(redis_url=redis_url, webhook_allow=LOCAL_HOOKS)
    resp = plain.client.post("/tasks/add", json={"args": [1, 2], "callback_url": named})
    assert resp.status_code == 422 and "SECRET" in resp.json()["error"]["message"]
