"""How a producer reaches Celeriac: straight to Redis, or through the HTTP gateway."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from sdk.calls import Call, Step
from sdk.http_tasks import HttpTaskSpec
from sdk.runs import RunJSON

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One async client per event loop: a client is bound to the loop it was made in,
    and a program may run several loops in turn (``asyncio.run`` twice)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make()
        return client


class Transport(Protocol):
    """Submit runs and read them back, sync and async."""

    def send(self, calls: Sequence[Call]) -> list[str]: ...

    def send_workflows(self, calls: Sequence[Call]) -> list[list[Step]]: ...

    def send_group(self, calls: Sequence[Call]) -> tuple[str, list[list[Step]]]: ...

    def put_http_task(self, name: str, spec: HttpTaskSpec) -> None: ...

    def delete_http_task(self, name: str) -> bool: ...

    def save_group(self, group_id: str, run_ids: Sequence[str]) -> None: ...

    def restore_group(self, group_id: str) -> list[str] | None: ...

    def run(self, run_id: str) -> RunJSON | None: ...

    def runs(self, run_ids: Sequence[str]) -> list[RunJSON | None]: ...

    def wait(self, run_id: str, timeout: float) -> RunJSON | None: ...

    async def send_async(self, calls: Sequence[Call]) -> list[str]: ...

    async def run_async(self, run_id: str) -> RunJSON | None: ...

    async def wait_async(self, run_id: str, timeout: float) -> RunJSON | None: ...

    def revoke(self, run_id: str, terminate: bool) -> None: ...

    async def revoke_async(self, run_id: str, terminate: bool) -> None: ...

    def close(self) -> None: ...


__all__ = ["PerLoop", "Transport"]
