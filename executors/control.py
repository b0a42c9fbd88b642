"""Commands broadcast to every worker (``Keys.control``): today, terminate a run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import msgspec

from executors.backoff import Backoff
from sdk.clients import UNREACHABLE, SyncClient

log = logging.getLogger("celeriac.control")


class ControlListener:
    """A daemon thread subscribed to the control channel; reconnects with backoff."""

    def __init__(
        self, client: SyncClient, channel: str, on_terminate: Callable[[str], None]
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_terminate = on_terminate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                backoff.reset()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._dispatch(message["data"])
            except UNREACHABLE as exc:
                log.warning("control channel lost (%s); reconnecting", exc)
                backoff.sleep()
            finally:
                pubsub.close()

    def _dispatch(self, data: bytes) -> None:
        try:
            command = msgspec.json.decode(data)
        except msgspec.DecodeError:
            log.warning("ignoring malformed control message %r", data[:100])
            return
        if isinstance(command, dict) and command.get("op") == "terminate":
            self._on_terminate(str(command.get("run", "")))
