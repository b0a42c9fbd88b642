"""``celeriac gateway``: refusals, and a real start and clean SIGTERM stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from gateway.cli import command, settings_env
from sdk.cli import main
from sdk.config import Settings


def test_no_redis_url_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CELERIAC_REDIS_URL", raising=False)
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "Redis URL" in result.output


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CELERIAC_WEBHOOK_TIMEOUT", "ten", "webhook_timeout must be a number"),
        ("CELERIAC_WEBHOOK_RATE", "0", "CELERIAC_WEBHOOK_RATE must be above 0"),
        ("CELERIAC_WEBHOOK_SECRET", "whsec_YmFk", "24 to 64 random bytes, not of 3"),
        ("CELERIAC_WEBHOOK_SECRET", "whsec_not base64!", "not a whsec_<base64> secret"),
    ],
)
def test_a_bad_setting_is_a_one_line_error(
    name: str, value: str, says: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(command, ["--redis-url", redis_url])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and says in result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("foo://127.0.0.1:6379", "unsupported Redis URL 'foo://127.0.0.1:6379'"),
        ("127.0.0.1:6379", "use redis://, rediss://, unix:// or redis+cluster://"),
        ("redis+sentinel://127.0.0.1:26379/main", "not supported yet"),
        (
            "redis+cluster://127.0.0.1:7000,127.0.0.1:x",
            "names nodes as host:port, not '127.0.0.1:x'",
        ),
        ("rediss+cluster://127.0.0.1:7000,:7001", "names nodes as host:port, not ':7001'"),
        ("redis+cluster://127.0.0.1:7000/2", "a Redis Cluster has only database 0"),
    ],
)
@pytest.mark.parametrize("cli", ["gateway", "worker", "scheduler", "submit", "dev"])
def test_a_url_of_another_scheme_is_a_one_line_error(
    cli: str, url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CELERIAC_REDIS_URL", raising=False)
    args = {"worker": ["-A", "examples"], "submit": ["examples.add"]}.get(cli, [])
    result = CliRunner().invoke(main, [cli, *args, "--redis-url", url])
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0 and says in result.output


def test_non_loopback_host_needs_insecure(redis_url: str) -> None:
    result = CliRunner().invoke(command, ["--redis-url", redis_url, "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--insecure" in result.output
    assert "API keys" in result.output


def test_settings_travel_to_workers_through_env() -> None:
    settings = Settings(redis_url="redis://h:1/0", prefix="p", signing_key="k", max_body=5)
    assert Settings().with_env(settings_env(settings)) == settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serves_and_stops_on_sigterm(workers: str, redis_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "CELERIAC_REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gateway.cli import command; command()",
            "--port",
            str(port),
            "--workers",
            workers,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
