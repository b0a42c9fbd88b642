"""``--pool http``: runs of tasks with an HTTP target, sent to that target
(docs/http-executor.md).

The asyncio pool's loop, with ``-c`` requests in flight on it: each slot is a
coroutine, and an HTTP task is an ``async def`` that awaits its request
(``executors/http_tasks.py``), so terminate and time limits cancel it as they cancel
any async run. Python tasks of the app given with ``-A``, if any, run too.
"""

from __future__ import annotations

from typing import ClassVar

import redis

from executors.http_tasks import Caller, HttpTasks
from executors.pools.asyncio import AsyncioPool
from sdk.app import App
from sdk.outbound import AllowList
from sdk.protocol.keys import Keys


class HttpPool(AsyncioPool):
    name: ClassVar[str] = "http"

    def task_source(self, app: App, client: redis.Redis, keys: Keys, concurrency: int) -> HttpTasks:
        conf = app.conf
        caller = Caller(conf.http_task_secret, AllowList.parse(conf.http_task_allow), concurrency)
        return HttpTasks(app, client, keys, caller)
