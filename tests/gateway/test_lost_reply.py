"""A submission whose reply Redis sent but the gateway never read.

The connection drops after the submit script ran; the client library sends the same
call again on a fresh connection. That second call must be taken as the same
submission (202, queued once), not as a clash with an existing run (409).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from tests.conftest import Gateway
from tests.gateway.conftest import KEYS, register


class ReplyCutter:
    """A TCP proxy to the test server on 127.0.0.1 that, once armed, forwards the next
    ``EVALSHA`` and then closes the client's connection instead of relaying the reply."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self.armed = threading.Event()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._upstream)
            cut = threading.Event()  # set: the server's next reply is dropped
            threading.Thread(target=self._up, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, cut), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        while data := _recv(client):
            if b"EVALSHA" in data and self.armed.is_set():
                self.armed.clear()
                self.cuts += 1
                cut.set()
                server.sendall(data)
                return  # both ends close once the reply is in (below)
            server.sendall(data)
        client.close()
        server.close()

    def _down(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        while data := _recv(server):
            if cut.is_set():  # the reply of the script, which has therefore run
                break
            try:
                client.sendall(data)
            except OSError:
                break
        client.close()
        server.close()

    def close(self) -> None:
        self._listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def cutter(redis_url: str) -> Iterator[ReplyCutter]:
    proxy = ReplyCutter(redis_url)
    yield proxy
    proxy.close()


def add(x: int, y: int) -> int:
    return x + y


def test_a_submission_sent_twice_by_the_client_library_is_one_run(
    r: redis.Redis, cutter: ReplyCutter, make_gateway: Callable[..., Gateway]
) -> None:
    register(r, add)
    client = make_gateway(redis_url=cutter.url).client
    assert client.post("/tasks/add", json={"args": [1, 2]}).status_code == 202  # script loaded

    cutter.armed.set()
    resp = client.post("/tasks/add", json={"args": [2, 3]})

    assert cutter.cuts == 1
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["id"]
    assert r.hget(KEYS.run(run_id), "state") == b"PENDING"
    bodies = [f[b"body"] for _id, f in r.xrange(KEYS.stream(0, "default", 5))]
    assert bodies == [b'{"args":[1,2],"kwargs":{}}', b'{"args":[2,3],"kwargs":{}}']  # once each
