"""How a producer reaches Celeriac: straight to Redis, or through the HTTP gateway."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sdk.calls import Call
from sdk.runs import RunJSON


class Transport(Protocol):
    """Submit runs and read them back, sync and async."""

    def send(self, calls: Sequence[Call]) -> list[str]: ...

    def run(self, run_id: str) -> RunJSON | None: ...

    def wait(self, run_id: str, timeout: float) -> RunJSON | None: ...

    async def send_async(self, calls: Sequence[Call]) -> list[str]: ...

    async def run_async(self, run_id: str) -> RunJSON | None: ...

    async def wait_async(self, run_id: str, timeout: float) -> RunJSON | None: ...

    def revoke(self, run_id: str, terminate: bool) -> None: ...

    async def revoke_async(self, run_id: str, terminate: bool) -> None: ...

    def close(self) -> None: ...


__all__ = ["Transport"]
