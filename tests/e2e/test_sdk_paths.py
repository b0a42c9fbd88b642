"""The SDK end to end, through the gateway and straight to Redis, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from sdk import App, states
from sdk.errors import TaskNotFound
from tests.conftest import Gateway
from tests.executors.conftest import WorkerFactory, app, start_worker

pytestmark = pytest.mark.cluster  # each test also runs on the local Redis Cluster

__all__ = ["app", "start_worker"]


@pytest.fixture(params=["gateway", "redis"])
def producer(
    request: pytest.FixtureRequest, redis_url: str, make_gateway: Callable[..., Gateway]
) -> Iterator[App]:
    if request.param == "gateway":
        client = App("proj", gateway_url=make_gateway(redis_url=redis_url).url)
    else:
        client = App("proj", redis_url=redis_url)
    yield client
    client.close()


def test_delay_get_through_either_path(producer: App, start_worker: WorkerFactory) -> None:
    start_worker("threads")

    @producer.task(name="t.add")
    def add(x: int, y: int) -> int:  # the worker's t.add runs it; only the name matters here
        raise AssertionError("runs remotely")

    result = add.delay(2, 3)
    assert result.get(timeout=5) == 5
    assert result.successful() and result.ready() and result.state == states.SUCCESS
    with pytest.raises(ValueError, match="bad") as info:
        producer.send_task("t.fail", ["bad"]).get(timeout=5)
    assert any("raise ValueError(message)" in note for note in info.value.__notes__)


def test_async_twins_through_either_path(producer: App, start_worker: WorkerFactory) -> None:
    start_worker("threads")

    @producer.task(name="t.add")
    def add(x: int, y: int) -> int:
        raise AssertionError("runs remotely")

    async def main() -> list[int]:
        results = [await add.delay_async(i, i) for i in range(5)]
        return [await r.get_async(timeout=5) for r in results]

    assert asyncio.run(main()) == [0, 2, 4, 6, 8]
    assert asyncio.run(main()) == [0, 2, 4, 6, 8]  # a second loop gets its own clients


def test_submit_many_sends_batches_through_either_path(
    producer: App, start_worker: WorkerFactory
) -> None:
    start_worker("threads", "-c", "4")

    @producer.task(name="t.add")
    def add(x: int, y: int) -> int:
        raise AssertionError("runs remotely")

    results = add.submit_many(((i, 1) for i in range(2_500)), priority=7)  # three batches
    assert len({r.id for r in results}) == 2_500
    assert [r.get(timeout=30) for r in results[::250]] == [i + 1 for i in range(0, 2_500, 250)]
    later = asyncio.run(add.submit_many_async([(1, 1), (2, 2)]))
    assert [r.get(timeout=5) for r in later] == [2, 4]
    with pytest.raises(TypeError, match="same id"):
        add.submit_many([(1, 1)], task_id="one")


def test_unknown_task_through_the_gateway_is_refused_at_submit(
    redis_url: str, make_gateway: Callable[..., Gateway]
) -> None:
    client = App("proj", gateway_url=make_gateway(redis_url=redis_url).url)
    with pytest.raises(TaskNotFound):
        client.send_task("no.such.task", [1])
    client.close()
