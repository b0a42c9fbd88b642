"""POST /workflows through a real gateway to a real worker, and GET /runs of a workflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sdk import App, GroupResult, chord, group, signature
from sdk.canvas import Signature
from sdk.errors import InvalidRequest
from tests.conftest import Gateway
from tests.executors.conftest import WorkerFactory, wait_for

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster


def sig(task: str, *args: Any, **extra: Any) -> dict[str, Any]:
    return {"task": task, "args": list(args), **extra}


@pytest.fixture
def client(
    redis_url: str, make_gateway: Callable[..., Gateway], start_worker: WorkerFactory
) -> httpx.Client:
    start_worker("threads", "-c", "8")  # registers the t.* tasks in the catalog
    return make_gateway(redis_url=redis_url).client


def run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    sent = client.post("/workflows", json=body)
    assert sent.status_code == 202, sent.text
    assert sent.headers["location"] == f"/runs/{sent.json()['id']}"
    done: dict[str, Any] = client.get(f"/runs/{sent.json()['id']}", params={"wait": 20}).json()
    return done


def test_a_chain_a_group_and_a_chord_as_json(client: httpx.Client) -> None:
    chain = run(client, {"chain": [sig("t.add", 2, 2), sig("t.mul", 10)]})
    assert chain["kind"] == "chain" and chain["state"] == "SUCCESS" and chain["result"] == 40
    assert len(chain["members"]) == 2 and chain["result_id"] == chain["members"][1]
    group = run(client, {"group": [sig("t.add", i, i) for i in range(100)]})
    assert group["state"] == "SUCCESS" and group["result"] == [2 * i for i in range(100)]
    header = [sig("t.add", i, i) for i in range(1000)]
    chord = run(client, {"chord": {"header": header, "body": sig("t.xsum")}})
    assert chord["state"] == "SUCCESS" and chord["result"] == 999000
    assert len(chord["members"]) == 1000
    member = client.get(f"/runs/{chain['members'][1]}").json()
    assert member["parent_id"] == chain["members"][0]  # each member is a run of its own


def test_a_group_holding_a_chain_and_a_failing_chord(client: httpx.Client) -> None:
    nested = run(
        client, {"group": [{"chain": [sig("t.add", 1, 1), sig("t.mul", 3)]}, sig("t.add", 1, 2)]}
    )
    assert nested["state"] == "SUCCESS" and nested["result"] == [6, 3]
    header = [sig("t.add", 1, 1), sig("t.fail", "boom")]
    failed = run(client, {"chord": {"header": header, "body": sig("t.xsum")}})
    assert failed["state"] == "FAILURE" and failed["error"]["type"] == "ChordError"
    assert "chord member 1 (t.fail" in failed["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"chain": [sig("t.add", 1, 1), sig("t.nope")]}, 404, "chain[1]"),
        ({"group": [sig("t.add", 1, 1), sig("t.add", "x", "y", "z")]}, 422, "group[1]"),
        ({"chord": {"header": [sig("t.add", 1, 1)], "body": {"args": []}}}, 400, "chord.body"),
        ({"chain": []}, 400, "chain"),
        (
            {"chord": {"header": [{"group": [sig("t.add", 1, 1)]}], "body": sig("t.xsum")}},
            400,
            "chord.header[0]",
        ),
        ({"chain": [sig("t.add", 1, 1), {"group": []}]}, 400, "chain[1].group"),
        ({"pipeline": []}, 400, "workflow"),
        ({"chord": {"header": [sig("t.add", 1, 1)]}}, 400, "chord"),
    ],
)
def test_a_bad_workflow_gets_a_4xx_naming_the_member(
    client: httpx.Client, body: dict[str, Any], status: int, names: str
) -> None:
    resp = client.post("/workflows", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"].startswith(names), resp.text


def test_malformed_json_is_400(client: httpx.Client) -> None:
    resp = client.post("/workflows", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 400


def test_nested_workflows_as_json(client: httpx.Client) -> None:
    fan = {"group": [sig("t.add", i) for i in range(3)]}
    chain = run(client, {"chain": [sig("t.add", 1, 1), fan, sig("t.xsum"), sig("t.mul", 2)]})
    assert chain["state"] == "SUCCESS" and chain["result"] == 18
    ends = run(client, {"chain": [sig("t.add", 1, 1), fan]})  # ends with a group: its list
    assert ends["state"] == "SUCCESS" and ends["result"] == [2, 3, 4]
    sent = client.post("/workflows", json={"chain": [sig("t.add", 1, 1), fan]}).json()
    assert len(sent["steps"]) == 2 and len(sent["steps"][1]["header"]) == 3
    header = [{"chain": [sig("t.add", 1, 1), sig("t.mul", 3)]}, sig("t.add", 0, 1)]
    body = {"chain": [sig("t.xsum"), sig("t.mul", 10)]}
    chord = run(client, {"chord": {"header": header, "body": body}})
    assert chord["state"] == "SUCCESS" and chord["result"] == 70
    inner = {"chord": {"header": [sig("t.add", 1), sig("t.add", 2)], "body": sig("t.xsum")}}
    inside = run(client, {"chain": [sig("t.add", 0, 1), inner, sig("t.add", 1)]})
    assert inside["state"] == "SUCCESS" and inside["result"] == 6


def test_revoking_a_workflow_revokes_its_pending_runs(client: httpx.Client) -> None:
    chain = {"chain": [sig("t.slow_add", 1, 1, 0.5), sig("t.add", 1), sig("t.add", 1)]}
    sent = client.post("/workflows", json=chain).json()
    first, *later = sent["members"]
    wait_for(lambda: client.get(f"/runs/{first}").json()["state"] == "STARTED", 5)
    revoked = client.post(f"/runs/{sent['id']}/revoke")
    assert revoked.status_code == 202, revoked.text
    assert revoked.json()["runs"][first] == "running"  # it runs on, without terminate
    assert all(revoked.json()["runs"][i] == "missing" for i in later)  # not sent yet: marked
    done = client.get(f"/runs/{sent['id']}", params={"wait": 10}).json()
    assert done["state"] == "REVOKED"
    assert client.get(f"/runs/{first}").json()["state"] == "SUCCESS"
    again = client.post(f"/runs/{sent['id']}/revoke")
    assert again.status_code == 409 and "already finished" in again.json()["error"]["message"]


def test_retry_submits_a_failed_run_again_as_its_child(client: httpx.Client) -> None:
    failed = client.post("/tasks/t.fail", json={"args": ["boom"]}).json()["id"]
    assert client.get(f"/runs/{failed}", params={"wait": 10}).json()["state"] == "FAILURE"
    again = client.post(f"/runs/{failed}/retry")
    assert again.status_code == 202, again.text
    child = again.json()
    assert child["parent_id"] == failed and child["id"] != failed
    assert again.headers["location"] == f"/runs/{child['id']}"
    run = client.get(f"/runs/{child['id']}", params={"wait": 10}).json()
    assert run["state"] == "FAILURE" and run["parent_id"] == failed and run["task"] == "t.fail"
    ok = client.post("/tasks/t.add", json={"args": [1, 2]}).json()["id"]
    assert client.get(f"/runs/{ok}", params={"wait": 10}).json()["state"] == "SUCCESS"
    refused = client.post(f"/runs/{ok}/retry")
    assert refused.status_code == 409 and "only a failed" in refused.json()["error"]["message"]
    assert client.post("/runs/nope/retry").status_code == 404


def test_the_sdk_sends_chains_groups_and_chords_through_the_gateway(
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    start_worker("threads", "-c", "8")
    gw = make_gateway(redis_url=redis_url)
    app = App("via-http", gateway_url=gw.url)
    try:

        def s(task: str, *args: Any) -> Signature:
            return signature(task, args, app=app)

        chained = (s("t.add", 2, 2) | s("t.mul", 10))()
        assert chained.get(timeout=10) == 40
        assert chained.parent is not None and chained.parent.get(timeout=1) == 4
        grouped = group([s("t.add", 1), s("t.add", 1) | s("t.mul", 3)])(2)
        assert grouped.get(timeout=10) == [3, 9]
        assert chord([s("t.add", i, i) for i in range(50)], s("t.xsum"))().get(timeout=10) == 2450
        assert grouped.save() is grouped  # the gateway kept the group it was sent
        restored = GroupResult.restore(grouped.id, app)
        assert restored is not None and restored.get(timeout=10) == [3, 9]
        assert GroupResult.restore("no-such-group", app) is None
        with pytest.raises(InvalidRequest, match="only the groups sent through it"):
            GroupResult("made-up", grouped.results, app).save()
        fan = group(s("t.add", i) for i in range(3))  # nested: a group inside a chain
        assert (s("t.add", 1, 1) | fan | s("t.xsum"))().get(timeout=10) == 9
        header = [s("t.add", 1, 1) | s("t.mul", 3), s("t.add", 0, 1)]  # a chain in a header
        assert chord(header, s("t.xsum"))(s("t.xsum", 1)).get(timeout=10) == 8
        good = tmp_path / "good"
        linked = s("t.add", 2, 2).apply_async(link=s("t.record_into", str(good)))
        assert linked.get(timeout=10) == 4
        wait_for(good.exists)
        assert good.read_text() == "4\n"
    finally:
        app.close()
