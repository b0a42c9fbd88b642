"""A webhook receiver on 127.0.0.1 that verifies every request with ``standardwebhooks``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

Reply = tuple[int, dict[str, str]]  # status, headers


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: Any = None  # the payload, when the signature verified
    error: str | None = None


@dataclass
class Receiver:
    """Records every POST; ``reply(path, hit_number)`` chooses the answer (default 204)."""

    secret: str
    port: int = 0
    reply: Callable[[str, int], Reply] = lambda path, n: (204, {})
    hits: list[Hit] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver.record(self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        hit = Hit(path, headers, body, time.time())
        try:
            hit.verified = Webhook(self.secret).verify(body, headers)
        except Exception as exc:
            hit.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.hits.append(hit)
            count = sum(1 for h in self.hits if h.path == path)
        return self.reply(path, count)

    def delivered(self) -> dict[str, Hit]:
        """The verified hits by ``webhook-id`` (the last one of each)."""
        with self._lock:
            return {h.headers["webhook-id"]: h for h in self.hits if h.verified is not None}

    def payloads(self) -> list[Any]:
        with self._lock:
            return [json.loads(h.body) for h in self.hits]
