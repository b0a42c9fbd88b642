"""``--pool http``: HTTP tasks registered over ``PUT /tasks/{name}``, run by POSTing each
run to a real receiver on 127.0.0.1, through a real gateway and worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from sdk import App
from sdk.errors import Conflict
from tests.conftest import Gateway
from tests.executors.conftest import ROOT, WorkerFactory, wait_for
from tests.gateway.receiver import Receiver as WebhookReceiver
from tests.schedulers import SchedulerFactory, start_scheduler

__all__ = ["start_scheduler"]  # a fixture, used by name
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"  # base64 of a 27-byte secret
ENV = {"CELERIAC_HTTP_TASK_SECRET": SECRET, "CELERIAC_HTTP_TASK_ALLOW": "127.0.0.1"}


class Receiver:
    """An HTTP function on 127.0.0.1: ``/add`` sums, ``/flaky`` answers 503 twice per run
    then 200, ``/bad`` 400, ``/hang`` never answers in time. Every request is kept,
    with whether its Standard Webhooks signature verified."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        run = json.loads(body)
        try:
            Webhook(SECRET).verify(body, dict(handler.headers.items()))
            signed = True
        except Exception:
            signed = False
        with self.lock:
            self.requests.append({"path": handler.path, "run": run, "signed": signed})
            tries = sum(r["run"]["id"] == run["id"] for r in self.requests)
        status, answer = 200, json.dumps({"sum": sum(run["args"]), "id": run["id"]}).encode()
        if handler.path == "/flaky" and tries <= 2:
            status, answer = 503, b"busy"
        elif handler.path == "/bad":
            status, answer = 400, b"no such customer"
        elif handler.path == "/hang":
            time.sleep(5)
        elif handler.path == "/slow":
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            time.sleep(0.1)
            with self.lock:
                self.in_flight -= 1
        elif handler.path == "/total":
            answer = json.dumps(sum(run["args"])).encode()
        handler.send_response(status)
        handler.send_header("content-length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def of(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def client(
    redis_url: str, make_gateway: Callable[..., Gateway], start_worker: WorkerFactory
) -> httpx.Client:
    start_worker("http", "-c", "64", env=ENV)
    return make_gateway(redis_url=redis_url).client


def put(client: httpx.Client, name: str, url: str, **extra: Any) -> None:
    answer = client.put(f"/tasks/{name}", json={"target": {"url": url}, **extra})
    assert answer.status_code in (200, 201), answer.text


def wait_all(client: httpx.Client, ids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    for run_id in ids:
        left = max(deadline - time.monotonic(), 0.1)
        runs.append(client.get(f"/runs/{run_id}", params={"wait": min(left, 30)}).json())
    return runs


def test_a_thousand_runs_reach_the_receiver_signed_and_come_back(
    client: httpx.Client, receiver: Receiver
) -> None:
    put(client, "fn.add", f"{receiver.url}/add")
    items = [{"args": [i, 1]} for i in range(1000)]
    sent = client.post("/tasks/fn.add/batch", json={"items": items})
    assert sent.status_code == 202, sent.text
    ids = sent.json()["ids"]
    runs = wait_all(client, ids)
    assert [r["state"] for r in runs] == ["SUCCESS"] * 1000, runs[0]["error"]
    assert [r["result"]["sum"] for r in runs] == [i + 1 for i in range(1000)]
    assert all(r["result"]["id"] == i for r, i in zip(runs, ids, strict=True))
    requests = receiver.of("/add")
    assert len(requests) == 1000 and all(r["signed"] for r in requests)
    first = requests[0]["run"]
    assert set(first) >= {"id", "task", "args", "kwargs", "attempt", "deadline", "queue"}
    assert first["task"] == "fn.add" and first["attempt"] == 1


def test_503_twice_then_200_is_three_signed_attempts(
    client: httpx.Client, receiver: Receiver
) -> None:
    put(client, "fn.flaky", f"{receiver.url}/flaky", options={"retry_backoff": 0.2})
    run_id = client.post("/tasks/fn.flaky", json={"args": [2, 3]}).json()["id"]
    [run] = wait_all(client, [run_id], 30)
    assert run["state"] == "SUCCESS" and run["result"]["sum"] == 5
    attempts = [r for r in receiver.of("/flaky") if r["run"]["id"] == run_id]
    assert len(attempts) == 3 and all(a["signed"] for a in attempts)
    assert [a["run"]["retries"] for a in attempts] == [0, 1, 2]


def test_a_400_fails_the_run_with_the_answer_and_a_hang_hits_the_time_limit(
    client: httpx.Client, receiver: Receiver
) -> None:
    put(client, "fn.bad", f"{receiver.url}/bad")
    put(client, "fn.hang", f"{receiver.url}/hang", options={"time_limit": 1, "max_retries": 0})
    bad = client.post("/tasks/fn.bad", json={"args": [1]}).json()["id"]
    hang = client.post("/tasks/fn.hang", json={"args": [1]}).json()["id"]
    failed, hung = wait_all(client, [bad, hang], 30)
    assert failed["state"] == "FAILURE"
    assert failed["error"]["type"] == "executors.http_tasks.TargetRefused"
    assert failed["error"]["message"] == "HTTP 400: no such customer"
    assert len(receiver.of("/bad")) == 1  # not retried
    assert hung["state"] == "FAILURE" and "time limit" in hung["error"]["message"]


def test_put_and_delete_an_http_task(client: httpx.Client, receiver: Receiver) -> None:
    created = client.put("/tasks/fn.new", json={"target": {"url": f"{receiver.url}/add"}})
    assert created.status_code == 201 and created.headers["location"] == "/tasks/fn.new"
    assert client.get("/tasks/fn.new").json()["target"]["url"] == f"{receiver.url}/add"
    wait_for(lambda: client.get("/tasks/fn.new").json()["workers"] == 1, 5)  # the http worker
    again = client.put("/tasks/fn.new", json={"target": {"url": f"{receiver.url}/bad"}})
    assert again.status_code == 200
    time.sleep(1.5)  # the worker re-reads the catalog every second
    run_id = client.post("/tasks/fn.new", json={"args": [1]}).json()["id"]
    [run] = wait_all(client, [run_id], 20)
    assert run["state"] == "FAILURE"  # the changed target, without a restart
    assert client.delete("/tasks/fn.new").status_code == 204
    assert client.get("/tasks/fn.new").status_code == 404
    assert client.delete("/tasks/fn.new").status_code == 404
    assert client.put("/tasks/t.add", json={"target": {"url": receiver.url}}).status_code == 409
    for body, status in [
        ({"target": {"url": "ftp://127.0.0.1/x"}}, 422),
        ({"target": {"url": receiver.url, "method": "GET"}}, 400),
        ({"target": {"url": receiver.url}, "options": {"autoretry_for": ["X"]}}, 400),
        ({"target": {}}, 400),
        ({"url": receiver.url}, 400),
    ]:
        answer = client.put("/tasks/fn.broken", json=body)
        assert answer.status_code == status, (body, answer.text)


def test_a_killed_http_worker_loses_no_run_and_resends_no_finished_one(
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    start_worker: WorkerFactory,
    receiver: Receiver,
) -> None:
    fast = {**ENV, "CELERIAC_WORKER_DEAD_AFTER": "1"}
    doomed = start_worker("http", "-c", "16", name="doomed", env=fast)
    client = make_gateway(redis_url=redis_url).client
    put(client, "fn.slow", f"{receiver.url}/slow")
    items = [{"args": [i]} for i in range(300)]
    ids = client.post("/tasks/fn.slow/batch", json={"items": items}).json()["ids"]
    deadline = time.monotonic() + 30
    while len(receiver.of("/slow")) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(doomed.pid, signal.SIGKILL)  # mid-load: runs in flight, runs queued
    doomed.wait(5)
    finished = {i for i in ids if client.get(f"/runs/{i}").json()["state"] == "SUCCESS"}
    assert 0 < len(finished) < 300
    start_worker("http", "-c", "16", name="survivor", env=fast)
    runs = wait_all(client, ids, 60)
    assert [r["state"] for r in runs] == ["SUCCESS"] * 300  # none lost
    sent: dict[str, int] = {}
    for request in receiver.of("/slow"):
        sent[request["run"]["id"]] = sent.get(request["run"]["id"], 0) + 1
    assert all(sent[i] == 1 for i in finished)  # a finished run is never sent again
    assert set(sent) == set(ids)


def test_the_sdk_and_the_cli_register_http_tasks(
    redis_url: str, client: httpx.Client, receiver: Receiver
) -> None:
    gateway_url = str(client.base_url).rstrip("/")
    for app in (App("direct", redis_url=redis_url), App("via-http", gateway_url=gateway_url)):
        try:
            app.register_http_task(f"fn.{app.main}", f"{receiver.url}/add", max_retries=1)
            result = app.send_task(f"fn.{app.main}", (1, 2))
            assert result.get(timeout=20)["sum"] == 3
            with pytest.raises(Conflict, match="Python task"):
                app.register_http_task("t.add", receiver.url)
            assert app.unregister_http_task(f"fn.{app.main}") is True
            assert app.unregister_http_task(f"fn.{app.main}") is False
        finally:
            app.close()
    cli = [sys.executable, "-m", "sdk.cli", "tasks"]
    put = [*cli, "put", "fn.cli", "--url", f"{receiver.url}/add", "--option", "max_retries=2"]
    done = subprocess.run([*put, "--redis-url", redis_url], capture_output=True, text=True)
    assert done.returncode == 0 and "fn.cli  -> POST" in done.stdout, done.stderr
    entry = client.get("/tasks/fn.cli").json()
    assert entry["options"] == {"max_retries": 2} and entry["target"]["url"].endswith("/add")
    bad = subprocess.run(
        [*cli, "put", "t.add", "--url", receiver.url, "--redis-url", redis_url],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "Error: task 't.add' is a Python task its workers registered: not replaced"
    ]
    rm = subprocess.run([*cli, "rm", "fn.cli", "--redis-url", redis_url], capture_output=True)
    assert rm.returncode == 0
    wait_for(lambda: client.get("/tasks/fn.cli").status_code == 404, 3)  # another's cache: 1 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("language", ["python", "node"])
def test_the_example_functions_verify_and_answer(
    client: httpx.Client, language: str, tmp_path: Path
) -> None:
    runtime = sys.executable if language == "python" else shutil.which("node")
    if runtime is None:
        pytest.skip("node is not installed here (the Python example runs everywhere)")
    port = _free_port()
    script = (
        ROOT / "examples" / "http_functions" / f"receiver.{'py' if language == 'python' else 'js'}"
    )
    env = {**os.environ, "CELERIAC_HTTP_TASK_SECRET": SECRET}
    proc = subprocess.Popen([runtime, str(script), str(port)], env=env)
    try:
        wait_for(lambda: _listening(port), 10)
        put(client, f"ex.{language}", f"http://127.0.0.1:{port}/add")
        run_id = client.post(f"/tasks/ex.{language}", json={"args": [2, 3, 4]}).json()["id"]
        [run] = wait_all(client, [run_id], 20)
        assert run["state"] == "SUCCESS" and run["result"] == 9
        unsigned = httpx.post(f"http://127.0.0.1:{port}/add", json={"args": [1]})
        assert unsigned.status_code == 401  # a caller without the secret gets nothing done
    finally:
        proc.terminate()
        proc.wait(5)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_terminating_a_running_http_run_cancels_its_request(
    client: httpx.Client, receiver: Receiver
) -> None:
    put(client, "fn.long", f"{receiver.url}/hang")  # answers after 5 s
    run_id = client.post("/tasks/fn.long", json={"args": [1]}).json()["id"]
    wait_for(lambda: len(receiver.of("/hang")) == 1, 10)
    started = time.monotonic()
    revoked = client.post(f"/runs/{run_id}/revoke", json={"terminate": True})
    assert revoked.status_code == 202 and revoked.json()["outcome"] == "terminating"
    [run] = wait_all(client, [run_id], 10)
    assert run["state"] == "REVOKED" and time.monotonic() - started < 4  # before the answer
    time.sleep(5 - (time.monotonic() - started) + 0.5)  # the late answer has come and gone
    assert client.get(f"/runs/{run_id}").json()["state"] == "REVOKED"
    assert len(receiver.of("/hang")) == 1  # and it was not sent again


def test_http_tasks_in_a_chain_and_a_chord_with_a_python_body(
    client: httpx.Client, receiver: Receiver
) -> None:
    put(client, "fn.total", f"{receiver.url}/total")
    chain = {"chain": [{"task": "fn.total", "args": [1, 2]}, {"task": "fn.total", "args": [10]}]}
    sent = client.post("/workflows", json=chain).json()
    done = client.get(f"/runs/{sent['id']}", params={"wait": 20}).json()
    assert done["state"] == "SUCCESS" and done["result"] == 13
    header = [{"task": "fn.total", "args": [i, i]} for i in range(20)]
    chord = {"chord": {"header": header, "body": {"task": "t.xsum"}}}  # a Python body
    sent = client.post("/workflows", json=chord).json()
    done = client.get(f"/runs/{sent['id']}", params={"wait": 20}).json()
    assert done["state"] == "SUCCESS" and done["result"] == 380


def test_a_targets_cap_bounds_its_requests_in_flight(
    client: httpx.Client, receiver: Receiver
) -> None:
    target = {"url": f"{receiver.url}/slow", "concurrency": 2}
    assert client.put("/tasks/fn.capped", json={"target": target}).status_code == 201
    items = [{"args": [i]} for i in range(20)]
    ids = client.post("/tasks/fn.capped/batch", json={"items": items}).json()["ids"]
    assert [r["state"] for r in wait_all(client, ids, 30)] == ["SUCCESS"] * 20
    assert receiver.most_in_flight == 2  # of a -c 64 worker


def test_the_guard_refuses_a_target_not_allowed(
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    start_worker: WorkerFactory,
    receiver: Receiver,
) -> None:
    start_worker("http", "-Q", "guarded", env={"CELERIAC_HTTP_TASK_SECRET": SECRET})  # no allow
    client = make_gateway(redis_url=redis_url).client
    put(client, "fn.local", f"{receiver.url}/add", queue="guarded")
    run_id = client.post("/tasks/fn.local", json={"args": [1]}).json()["id"]
    [run] = wait_all(client, [run_id], 20)
    assert run["state"] == "FAILURE" and "loopback address" in run["error"]["message"]
    assert "CELERIAC_HTTP_TASK_ALLOW" in run["error"]["message"]
    assert receiver.of("/add") == []  # never reached


def test_a_schedule_fires_an_http_task_and_its_webhook_reports_it(
    redis_url: str,
    make_gateway: Callable[..., Gateway],
    start_worker: WorkerFactory,
    start_scheduler: SchedulerFactory,
    receiver: Receiver,
) -> None:
    start_worker("http", env=ENV)
    hooks = WebhookReceiver(SECRET).start()
    try:
        gw = make_gateway(redis_url=redis_url, webhook_secret=SECRET, webhook_allow="127.0.0.1")
        client = gw.client
        put(client, "fn.tick", f"{receiver.url}/total")
        every = {"type": "interval", "seconds": 1}
        made = client.post("/schedules", json={"id": "t", "task": "fn.tick", "trigger": every})
        assert made.status_code == 201, made.text
        start_scheduler()
        wait_for(lambda: len(receiver.of("/total")) >= 2, 15)  # fired, and sent on
        run = client.post(
            "/tasks/fn.tick", json={"args": [4, 5], "callback_url": f"{hooks.url}/done"}
        ).json()
        wait_for(lambda: any(h.verified for h in hooks.hits), 15)
        [payload] = [h.verified for h in hooks.hits if h.verified]
        assert payload["id"] == run["id"] and payload["state"] == "SUCCESS"
        assert payload["result"] == 9
    finally:
        hooks.stop()
