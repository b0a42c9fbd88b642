"""One real Valkey/Redis server per test session, flushed before each test; and one local
three-primary Redis Cluster, started by the first test that needs it.

A test marked ``cluster`` (``pytestmark = pytest.mark.cluster`` for a module) runs twice:
on the single server and on the cluster (``backend`` is ``"single"`` or ``"cluster"``).
Its ``redis_url`` is then the cluster's ``redis+cluster://`` URL, its ``r`` a
``RedisCluster``, and ``layout`` the key layout every component derives from the URL
(16 partitions on the cluster). A fixture of ``CLUSTER_VARIANTS`` it takes (``pool``,
the gateway tests' ``keys``) has fewer values on the cluster.
"""

from __future__ import annotations

import contextlib
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
from sdk.clients import sync_client
from sdk.config import Settings
from sdk.embedded import EmbeddedCluster, EmbeddedServer
from sdk.protocol.keys import Keys

BACKENDS = ("single", "cluster")
POOLS = ("prefork", "threads", "gevent", "asyncio")
# A fixture parametrised on the single server whose values narrow on the cluster, where
# every variant costs a run: one pool of each consumer (the sync consumer's Redis calls
# are the same whatever its pool; prefork's forked slots are the odd one out among
# them; asyncio has a consumer of its own), and the cluster's default layout of 16
# partitions (``keys``).
CLUSTER_VARIANTS: dict[str, tuple[tuple[object, ...], tuple[object, ...]]] = {
    "pool": (POOLS, ("prefork", "threads", "asyncio")),
    "keys": ((1, 4), (16,)),
}


@pytest.hookimpl(tryfirst=True)  # before pytest reads the parametrize marks
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``cluster`` run on the single server and on the cluster."""
    marked = metafunc.definition.get_closest_marker("cluster")
    if marked is None or "backend" not in metafunc.fixturenames:
        return
    taken = {n for m in metafunc.definition.iter_markers("parametrize") for n in _names(m)}
    names = [n for n in CLUSTER_VARIANTS if n in metafunc.fixturenames and n not in taken]
    # As a mark, which pytest then applies, so that it also takes precedence over the
    # params of the fixture it names.
    if not names:
        mark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
    else:
        name = names[0]  # tests take one of them at most
        single, cluster = CLUSTER_VARIANTS[name]
        combos = [("single", v) for v in single] + [("cluster", v) for v in cluster]
        ids = [f"{b}-{v}" for b, v in combos]
        mark = pytest.mark.parametrize(("backend", name), combos, indirect=True, ids=ids)
    metafunc.definition.add_marker(mark)


def _names(parametrize: pytest.Mark) -> list[str]:
    names = parametrize.args[0]
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where the test's Redis is: ``"single"`` (the default) or ``"cluster"``."""
    return str(getattr(request, "param", "single"))


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


@contextlib.contextmanager
def slot_moved(cluster: EmbeddedCluster, key: str) -> Iterator[None]:
    """While the block runs, the slot of ``key`` (which must hold no key) is served by
    another node than its own, as after a resharding; then it is moved back."""
    nodes = [redis.Redis(host=n.host, port=n.port) for n in cluster.nodes]
    slot = int(nodes[0].execute_command("CLUSTER", "KEYSLOT", key))

    def owner() -> int:
        for i, node in enumerate(nodes):
            try:
                node.get(key)
                return i
            except redis.ResponseError:  # MOVED: another node's
                continue
        raise AssertionError(f"no node serves slot {slot}")

    def give(to: int) -> None:
        node_id = nodes[to].execute_command("CLUSTER", "MYID")
        for node in [nodes[to], *(n for i, n in enumerate(nodes) if i != to)]:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_id)
        deadline = time.monotonic() + 10
        while owner() != to:
            assert time.monotonic() < deadline, f"slot {slot} did not move"
            time.sleep(0.01)

    home = owner()
    give((home + 1) % len(nodes))
    try:
        yield
    finally:
        give(home)
        for node in nodes:
            node.close()


@pytest.fixture
def redis_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The URL of the test's flushed Redis: the session server's, or the cluster's."""
    if backend == "cluster":
        url = request.getfixturevalue("valkey_cluster").url
    else:
        url = request.getfixturevalue("redis_server").url
    client = sync_client(url)
    client.flushall()
    client.close()
    return str(url)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client of ``redis_url``: a ``RedisCluster`` on the cluster (typed loosely: tests
    use the commands both serve)."""
    client: Any = sync_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def layout(redis_url: str) -> Keys:
    """The key layout the components use by default on ``redis_url``: 1 partition on one
    server, 16 on a cluster."""
    return Keys.from_settings(Settings(redis_url=redis_url))


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
