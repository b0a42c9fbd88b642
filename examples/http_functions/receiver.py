"""An HTTP task's function in Python: verify the request came from Celeriac, do the work,
answer with the result (docs/http-executor.md).

    CELERIAC_HTTP_TASK_SECRET=whsec_... python examples/http_functions/receiver.py 8001
    celeriac tasks put shop.add --url http://127.0.0.1:8001/add

Only the standard library and ``standardwebhooks`` (which Celeriac installs): any
framework does, as long as it reads the raw body before verifying it.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

SECRET = os.environ.get("CELERIAC_HTTP_TASK_SECRET", "")


class Function(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            Webhook(SECRET).verify(body, dict(self.headers.items()))
        except WebhookVerificationError:
            return self._answer(401, {"error": "not signed by Celeriac"})
        run = json.loads(body)  # {"id", "task", "args", "kwargs", "attempt", "deadline", ...}
        if self.path == "/add":
            return self._answer(200, sum(run["args"]))
        return self._answer(404, {"error": f"no function at {self.path}"})  # FAILURE

    def _answer(self, status: int, value: object) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    ThreadingHTTPServer(("127.0.0.1", port), Function).serve_forever()
