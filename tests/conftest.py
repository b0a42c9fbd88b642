"""One real Valkey/Redis server per test session, flushed before each test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from redis.cluster import ClusterNode, RedisCluster

from gateway.app import create_app
from sdk.config import Settings
from sdk.embedded import EmbeddedCluster, EmbeddedServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("redis"), persistent=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A Redis Cluster of three bundled valkey-server primaries, started once per session
    by the first test that asks for it."""
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_client(valkey_cluster: EmbeddedCluster) -> Iterator[RedisCluster]:
    """A client of the local cluster, every primary flushed first."""
    nodes = [ClusterNode(n.host, n.port) for n in valkey_cluster.nodes]
    client = RedisCluster(startup_nodes=nodes)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def redis_url(redis_server: EmbeddedServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return "celeriac"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


class Gateway:
    """One running gateway: its base URL, an httpx client, and its app (for introspection)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> Gateway:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(**settings: Any) -> Gateway:
        gw = Gateway(Settings(**settings)).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()
