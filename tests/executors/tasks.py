"""Tasks the executor tests run in real worker processes."""

from __future__ import annotations

import os
import time
from typing import Any

from sdk import App, Task
from sdk.errors import Reject
from sdk.middleware import Execution, Middleware


class Stamp(Middleware):
    """A user's middleware: wraps what ``t.stamped`` returns, and counts its runs."""

    def before_execute(self, run: Execution) -> None:
        run.notes["pid"] = os.getpid()

    def around_execute(self, run: Execution, call: Any) -> Any:
        if run.task.name != "t.stamped":
            return call()
        return {"value": call(), "stamped_in": run.notes["pid"], "attempts": run.attempts}

    async def around_execute_async(self, run: Execution, call: Any) -> Any:
        if run.task.name != "t.async_stamped":
            return await call()
        value = await call()
        return {"value": value, "stamped_in": run.notes["pid"], "attempts": run.attempts}


app = App("tests", middleware=[Stamp()])


class InventoryError(Exception):
    """A user-defined exception: rebuilt by type name when this module is imported."""


@app.task(name="t.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="t.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="t.slow_add")
def slow_add(x: int, y: int, seconds: float) -> int:
    time.sleep(seconds)
    return x + y


@app.task(name="t.xsum")
def xsum(values: list[int], *more: int) -> int:
    return sum(values) + sum(more)


@app.task(name="t.sum_on_second_try", bind=True, max_retries=1)
def sum_on_second_try(self: Task[Any, Any], values: list[int]) -> int:
    """A chord body that retries once: its second attempt must see the results once."""
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return sum(values)


@app.task(name="t.record_into")
def record_into(value: Any, path: str) -> None:
    """A callback: appends what it was given (a result, or a failed run's id)."""
    with open(path, "a") as f:
        f.write(f"{value}\n")


@app.task(name="t.count_into")
def count_into(values: list[int], path: str) -> int:
    """A chord body that leaves a mark each time it runs (exactly-once checks)."""
    with open(path, "a") as f:
        f.write("x")
    return sum(values)


@app.task(name="t.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="t.inventory")
def inventory(sku: str) -> None:
    raise InventoryError(f"out of {sku}")


@app.task(name="t.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="t.whoami", bind=True)
def whoami(self: Any) -> dict[str, Any]:
    req = self.request
    return {
        "id": req.id,
        "task": req.task,
        "delivery_count": req.delivery_count,
        "queue": req.queue,
        "root_id": req.root_id,
        "pid": os.getpid(),
    }


@app.task(name="t.echo")
def echo(value: Any) -> Any:
    return value


@app.task(name="t.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="t.touch")
def touch(path: str, seconds: float = 0.0) -> str:
    """Leave a mark for each execution, then sleep (to be killed mid-run)."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return path


@app.task(name="t.flaky", bind=True, max_retries=3)
def flaky(self: Any, succeed_on: int) -> int:
    """Fails until its ``succeed_on``-th attempt, asking for a retry each time."""
    if self.request.retries + 1 < succeed_on:
        raise self.retry(exc=ConnectionError(f"attempt {self.request.retries + 1}"), countdown=0.2)
    return self.request.retries


@app.task(
    name="t.autoretry",
    autoretry_for=(ConnectionError,),
    max_retries=2,
    retry_backoff=0.1,
    retry_jitter=False,
)
def autoretry(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{time.time()}\n")
    raise ConnectionError("still down")


@app.task(name="t.crash")
def crash(path: str) -> None:
    """Dies like an OOM-killed child: no exception, the process is just gone."""
    with open(path, "a") as f:
        f.write("x\n")
    os.kill(os.getpid(), 9)


@app.task(name="t.limited", time_limit=1)
def limited(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.task(name="t.soft", soft_time_limit=0.5)
def soft(seconds: float) -> str:
    from sdk.errors import SoftTimeLimitExceeded

    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # Python-level work, so threads can be interrupted
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@app.task(name="t.spin")
def spin(path: str, seconds: float) -> str:
    """Marks its start, then loops in Python (interruptible in every pool)."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "done"


@app.task(name="t.limited_rate", rate_limit="20/s")
def limited_rate() -> float:
    return time.time()


@app.task(name="t.progress", bind=True)
def progress(self: Any, path: str) -> str:
    """Reports PROGRESS, then waits for the test to let it finish (the file appears)."""
    self.update_state(state="PROGRESS", meta={"done": 1, "of": 2})
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "finished"


@app.task(name="t.journal", bind=True)
def journal(self: Any, folder: str, seconds: float) -> str:
    """Leaves ``<id>.start`` then, after ``seconds``, ``<id>.end`` (one line per execution)."""
    run_id = self.request.id
    with open(os.path.join(folder, f"{run_id}.start"), "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    with open(os.path.join(folder, f"{run_id}.end"), "a") as f:
        f.write(f"{os.getpid()}\n")
    return run_id


@app.task(name="t.order")
def order(path: str, label: str) -> str:
    with open(path, "a") as f:
        f.write(f"{label}\n")
    return label


@app.task(name="t.async_add")
async def async_add(x: int, y: int) -> int:
    import asyncio

    await asyncio.sleep(0)
    return x + y


@app.task(name="t.async_window")
async def async_window(seconds: float) -> list[float | int]:
    """When it ran, and on which event loop (to show runs share one loop and overlap)."""
    import asyncio

    started = time.time()
    await asyncio.sleep(seconds)
    return [started, time.time(), id(asyncio.get_running_loop())]


@app.task(name="t.async_spin", soft_time_limit=0.5)
async def async_spin(seconds: float) -> str:
    import asyncio

    await asyncio.sleep(seconds)
    return "finished"


_kept_lock: Any = None


@app.task(name="t.async_kept_lock")
async def async_kept_lock() -> str:
    """Waits on a lock the module keeps between runs, as an async client's connection
    pool would be: the first wait binds it to the event loop it ran on."""
    import asyncio

    global _kept_lock
    _kept_lock = _kept_lock or asyncio.Lock()

    async def hold() -> None:
        async with _kept_lock:
            await asyncio.sleep(0)

    await asyncio.gather(hold(), hold())  # the second one waits
    return "ok"


@app.task(name="t.async_busy", soft_time_limit=0.5)
async def async_busy(seconds: float) -> str:
    """Works in Python without ever awaiting, so a cancel alone would not stop it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "finished"


@app.task(name="t.custom_state", bind=True)
def custom_state(self: Any, path: str) -> str:
    """Reports a custom state, then waits for the test's signal."""
    self.update_state(state="DOWNLOADING", meta={"bytes": 10})
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "downloaded"


class Journaled(Task):  # type: ignore[type-arg]
    """A task base class whose hooks leave a line in the file named by the first argument."""

    def _note(self, args: Any, line: str) -> None:
        with open(args[0], "a") as f:
            f.write(line + "\n")

    def on_success(self, retval: Any, run_id: str, args: Any, kwargs: Any) -> None:
        self._note(args, f"success {retval}")

    def on_failure(
        self, exc: BaseException, run_id: str, args: Any, kwargs: Any, einfo: str
    ) -> None:
        self._note(args, f"failure {type(exc).__name__}")

    def on_retry(self, exc: BaseException, run_id: str, args: Any, kwargs: Any, einfo: str) -> None:
        self._note(args, f"retry {exc}")


@app.task(name="t.hooked", base=Journaled, bind=True, max_retries=1)
def hooked(self: Any, path: str, mode: str) -> str:
    if mode == "fail":
        raise KeyError("nope")
    if mode == "retry":
        raise self.retry(exc=ConnectionError("again"), countdown=0.1)
    return "ok"


_hoard: list[bytes] = []


@app.task(name="t.hog")
def hog(megabytes: int) -> int:
    """Grows the process (as a leaky task would) and reports its pid."""
    _hoard.append(b"x" * (megabytes << 20))
    return os.getpid()


@app.task(name="t.stamped")
def stamped(x: int) -> int:
    return x * 2


@app.task(name="t.reject", bind=True, max_retries=2)
def reject(self: Any, requeue: bool) -> None:
    raise Reject(f"refused on try {self.request.retries}", requeue=requeue)


@app.task(name="t.async_touch")
async def async_touch(path: str, seconds: float = 0.0) -> str:
    """``t.touch`` awaiting its sleep: a long run on the asyncio pool's loop."""
    import asyncio

    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    await asyncio.sleep(seconds)
    return path


@app.task(name="t.async_limited", time_limit=1)
async def async_limited(seconds: float) -> int:
    import asyncio

    await asyncio.sleep(seconds)
    return os.getpid()


@app.task(name="t.async_stamped")
async def async_stamped(x: int) -> int:
    """Wrapped by ``Stamp`` on the asyncio pool's loop (its async hook)."""
    return x * 2
