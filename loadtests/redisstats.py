"""What Redis was asked: ``INFO commandstats`` deltas and a MONITOR sample.

commandstats counts every command executed, including the ones a Lua script runs;
MONITOR tags those script-internal lines with ``lua``, so it also tells the top-level
commands a client sent (an EVALSHA counts once, whatever its script does).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import psutil
import redis

# Commands the harness itself sends; never charged to a system under test.
OWN = frozenset({"info", "flushdb", "flushall", "monitor", "config|get", "config|set"})

_LINE = re.compile(rb'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"')


def calls(client: redis.Redis) -> Counter[str]:
    """Calls per command since the server started (or CONFIG RESETSTAT)."""
    stats = client.info("commandstats")
    return Counter(
        {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if "calls" in v}
    )


def delta(before: Counter[str], after: Counter[str], own: Counter[str]) -> Counter[str]:
    """Commands run between two snapshots, less the harness's own."""
    out = Counter({k: after[k] - before.get(k, 0) - own.get(k, 0) for k in after})
    return Counter({k: v for k, v in out.items() if v > 0 and k not in OWN})


@dataclass
class MonitorLines:
    """Top-level commands seen, by client address; lines run inside scripts are counted apart."""

    by_client: dict[str, Counter[str]] = field(default_factory=dict)
    scripted: Counter[str] = field(default_factory=Counter)

    def add(self, client: str, command: str) -> None:
        if client == "lua":
            self.scripted[command] += 1
        else:
            self.by_client.setdefault(client, Counter())[command] += 1

    def split(self, ports: set[int]) -> tuple[Counter[str], Counter[str]]:
        """(commands from clients on ``ports``, commands from every other client)."""
        mine: Counter[str] = Counter()
        others: Counter[str] = Counter()
        for client, counts in self.by_client.items():
            port = client.rpartition(":")[2]
            (mine if port.isdigit() and int(port) in ports else others).update(counts)
        return mine, others


class Monitor:
    """MONITOR on its own socket, read by a thread until the ``with`` block ends."""

    def __init__(self, host: str, port: int) -> None:
        self.lines = MonitorLines()
        self._sock = socket.create_connection((host, port), timeout=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._sock.sendall(b"MONITOR\r\n")
        buf = b""
        while b"\r\n" not in buf:  # +OK: from here on every command is reported
            buf += self._sock.recv(4096)
        self._pending = buf.split(b"\r\n", 1)[1]
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()

    def _read(self) -> None:
        """Parse lines until told to stop, then until the socket is quiet (at most 1 s)."""
        self._sock.settimeout(0.1)
        buf = self._pending
        last_call = None
        while True:
            *complete, buf = buf.split(b"\r\n")
            for line in complete:
                if m := _LINE.match(line):
                    self.lines.add(m[1].decode(), m[2].decode().lower())
            if self._stop.is_set():
                last_call = last_call or time.monotonic() + 1.0
                if time.monotonic() > last_call:
                    return
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                if self._stop.is_set():
                    return
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk


def own_ports(server_port: int) -> set[int]:
    """Local ports of this process's connections to the server (its producer clients)."""
    conns = psutil.Process().net_connections(kind="tcp")
    return {c.laddr.port for c in conns if c.raddr and c.raddr.port == server_port}
