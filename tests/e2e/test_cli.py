"""The command line against a running ``celeriac dev``: submit, result, errors, help; and
every command on the local Redis Cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sdk.clients import sync_client
from sdk.embedded import EmbeddedCluster
from sdk.protocol.keys import Keys

pytestmark = pytest.mark.timeout(120)


def redis_url_of(dev: Any) -> str:
    found = re.search(r"^\s*redis\s+(redis://\S+)", dev.output(), re.MULTILINE)
    assert found, dev.output()
    return found.group(1)


def assert_one_line_error(done: Any, *needles: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], done.stderr


def test_submit_wait_prints_the_result(cli: Any, dev: Any) -> None:
    done = cli("submit", "examples.add", "--args", "[2,3]", "--wait", CELERIAC_GATEWAY_URL=dev.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"


def test_submit_and_result_over_redis_directly(cli: Any, dev: Any) -> None:
    url = redis_url_of(dev)
    done = cli("submit", "examples.mul", "--args", "[6,7]", "--redis-url", url)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    shown = cli("result", run_id, "--wait", "10", "--json", "--redis-url", url)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert (run["id"], run["state"], run["result"]) == (run_id, "SUCCESS", 42)
    human = cli("result", run_id, "--gateway-url", dev.url)
    assert re.search(r"^state\s+SUCCESS$", human.stdout, re.MULTILINE), human.stdout
    assert re.search(r"^result\s+42$", human.stdout, re.MULTILINE), human.stdout


def test_submit_many_and_wait_as_json(cli: Any, dev: Any) -> None:
    done = cli(
        "submit",
        "examples.add",
        "--kwargs",
        '{"x": 1, "y": 2}',
        "--count",
        "150",
        "--wait",
        "--json",
        "--gateway-url",
        dev.url,
    )
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    assert len(items) == 150
    assert {(r["state"], r["result"]) for r in items} == {("SUCCESS", 3)}


def test_a_failed_run_exits_non_zero_with_its_error(cli: Any, dev: Any) -> None:
    done = cli(
        "submit",
        "examples.fail",
        "--kwargs",
        '{"message": "nope"}',
        "--wait",
        "--gateway-url",
        dev.url,
    )
    assert done.returncode == 1
    assert "FAILURE" in done.stderr and "ValueError: nope" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_args_is_a_one_line_usage_error(cli: Any, dev: Any) -> None:
    done = cli("submit", "examples.add", "--args", "[2,", "--gateway-url", dev.url)
    assert done.returncode == 2
    assert_one_line_error(done, "--args", "not valid JSON")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["submit", "examples.nope"], "examples.nope"),
        (["result", "no-such-run"], "no-such-run"),
    ],
)
def test_unknown_names_are_one_line_errors(
    cli: Any, dev: Any, argv: list[str], needle: str
) -> None:
    assert_one_line_error(cli(*argv, "--gateway-url", dev.url), needle)


def test_unreachable_gateway_is_a_one_line_error(cli: Any) -> None:
    done = cli("submit", "examples.add", "--gateway-url", "http://127.0.0.1:9")
    assert_one_line_error(done, "unreachable")


def test_no_destination_is_a_usage_error(cli: Any) -> None:
    done = cli("submit", "examples.add")
    assert done.returncode == 2
    assert_one_line_error(done, "--gateway-url")


@pytest.mark.parametrize(
    "command",
    [["submit", "examples.add"], ["worker", "-A", "examples"], ["scheduler"], ["gateway"]],
)
def test_a_malformed_setting_is_a_one_line_error(cli: Any, command: list[str]) -> None:
    url = "redis://127.0.0.1:9/0"  # never reached: the setting is refused first
    done = cli(*command, "--redis-url", url, CELERIAC_RESULT_EXPIRES="a day")
    assert_one_line_error(done, "result_expires must be a number")


def test_help_lists_the_commands(cli: Any) -> None:
    done = cli("--help")
    assert done.returncode == 0, done.stderr
    for name in ("dev", "gateway", "worker", "submit", "result"):
        assert re.search(rf"^\s+{name}\s", done.stdout, re.MULTILINE), done.stdout


def test_revoke_and_dlq_commands(cli: Any, dev: Any) -> None:
    url = redis_url_of(dev)
    queued = cli(
        "submit", "examples.add", "--args", "[1,2]", "--countdown", "60", "--redis-url", url
    )
    run_id = queued.stdout.strip()
    done = cli("revoke", run_id, "--redis-url", url)
    assert done.returncode == 0, done.stderr
    shown = cli("result", run_id, "--json", "--redis-url", url)
    assert json.loads(shown.stdout)["state"] == "REVOKED"
    assert_one_line_error(cli("revoke", run_id, "--redis-url", url), "already finished")
    listed = cli("dlq", "list", "--gateway-url", dev.url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["ID", "TASK", "QUEUE", "ATTEMPTS", "ERROR"]
    assert_one_line_error(
        cli("dlq", "requeue", run_id, "--gateway-url", dev.url), "not in the dead"
    )


def test_every_command_serves_a_cluster_url(
    cli: Any, start_dev: Any, valkey_cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    """``celeriac dev`` on the local cluster runs the gateway, a worker and a scheduler on
    it; then every other command reads and writes the same runs through the cluster."""
    url = valkey_cluster.url
    client = sync_client(url)
    client.flushall()
    dev = start_dev(tmp_path / "data", "--redis-url", url)
    dev.wait_ready()
    assert f"redis     {url}   (external)" in dev.output()
    done = cli("submit", "examples.add", "--args", "[2,3]", "--wait", "--redis-url", url)
    assert (done.returncode, done.stdout.strip()) == (0, "5"), done.stderr
    run_id = cli("submit", "examples.mul", "--args", "[6,7]", "--redis-url", url).stdout.strip()
    shown = cli("result", run_id, "--wait", "10", "--json", "--redis-url", url)
    assert json.loads(shown.stdout)["result"] == 42, shown.stderr
    later = cli(
        "submit", "examples.add", "--args", "[1,2]", "--countdown", "60", "--redis-url", url
    )
    done = cli("revoke", later.stdout.strip(), "--redis-url", url)
    assert done.returncode == 0, done.stderr
    listed = cli("dlq", "list", "--gateway-url", dev.url)  # dlq reads through a gateway
    assert listed.stdout.split() == ["ID", "TASK", "QUEUE", "ATTEMPTS", "ERROR"], listed.stderr
    add = ["add", "--task", "examples.add", "--every", "1h", "--args", "[1,2]"]
    added = cli("schedules", "--redis-url", url, *add)
    assert added.returncode == 0, added.stderr
    listed = cli("schedules", "--redis-url", url, "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)["items"]] == [added.stdout.strip()]
    assert client.get(Keys().scheduler_leader)  # dev's scheduler leads, on the cluster
    assert dev.http.get(f"/runs/{run_id}").json()["state"] == "SUCCESS"  # and its gateway
    client.close()
