"""The leader lease: one key holding the leader's id, set with NX and a short expiry.

The leader renews it every ``renew_every`` seconds with a compare-and-renew script; a
standby takes it with ``SET NX`` once it has expired, so a dead leader is replaced within
about ``ttl`` + ``renew_every`` seconds. A leader that cannot renew (its key was taken,
or Redis did not answer for a whole ``ttl``) must stop firing at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from sdk.clients import AsyncClient
from sdk.protocol import plans
from sdk.protocol.drivers import AsyncScripts


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, client: AsyncClient, key: str, ttl: float = 5.0) -> None:
        self.redis = client
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.holder = holder_id()
        self.valid_until = 0.0  # monotonic time up to which we surely hold it
        self._scripts = AsyncScripts(client)

    @property
    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    async def acquire_or_renew(self) -> bool:
        """Take the lease if free, renew it if ours; whether we hold it now."""
        started = time.monotonic()
        if self.held:
            ok = await self._renew()
        else:
            ok = bool(await self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))
            if not ok:  # ours already (a renewal whose answer we lost)?
                ok = await self._renew()
        # Count the expiry from before the call: the key may have been set at its start.
        self.valid_until = started + self.ttl_ms / 1000 * 0.9 if ok else 0.0
        return ok

    async def release(self) -> None:
        self.valid_until = 0.0
        await self._scripts(plans.lease_release(self.key, self.holder))

    async def _renew(self) -> bool:
        return await self._scripts(plans.lease_renew(self.key, self.holder, self.ttl_ms))
