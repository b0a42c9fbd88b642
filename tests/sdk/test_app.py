"""The producer API without a worker: registration, settings, eager mode, submission."""

from __future__ import annotations

import types

import pytest
import redis

from sdk import App, Task, celery_settings, states
from sdk.celery_settings import CelerySettingWarning
from sdk.errors import DuplicateTask, InvalidRequest
from sdk.protocol.keys import Keys


def test_task_works_bare_and_with_options() -> None:
    app = App("t")

    @app.task
    def plain(x: int) -> int:
        return x

    @app.task(name="custom.name", queue="io", max_retries=5)
    def configured(x: int) -> int:
        return x

    assert plain.name == f"{__name__}.test_task_works_bare_and_with_options.<locals>.plain"
    assert configured.name == "custom.name"
    assert configured.options.queue == "io" and configured.options.max_retries == 5
    assert plain(3) == 3  # calling a task runs it here
    assert set(app.tasks) == {plain.name, "custom.name"}


def test_duplicate_names_are_an_error_at_import() -> None:
    app = App("t")
    app.task(name="dup")(lambda: 1)
    with pytest.raises(DuplicateTask):
        app.task(name="dup")(lambda: 2)


def test_unknown_task_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="unknown task option"):
        App("t").task(retries_max=3)(lambda: 1)


def test_eager_mode_runs_inline_with_a_request() -> None:
    app = App("t", task_always_eager=True)

    @app.task(bind=True)
    def me(self: Task[..., str]) -> str:
        assert self.request.is_eager
        return self.request.id or ""

    result = me.delay()
    assert result.get() == result.id
    assert result.state == states.SUCCESS


def test_eager_mode_propagates_exceptions() -> None:
    app = App("t", task_always_eager=True)

    @app.task
    def boom() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom.delay()
    app.conf.task_eager_propagates = False
    assert isinstance(boom.delay().get(propagate=False), KeyError)


def test_settings_precedence_env_over_app_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert App("t").conf.prefix == "celeriac"
    assert App("t", prefix="mine").conf.prefix == "mine"
    monkeypatch.setenv("CELERIAC_PREFIX", "from-env")
    assert App("t", prefix="mine").conf.prefix == "from-env"


def test_config_from_object_reads_celery_style_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_settings, "_warned", set())
    config = types.SimpleNamespace(result_expires=60, TASK_ALWAYS_EAGER=True, broker_pool=3)
    app = App("t")
    with pytest.warns(CelerySettingWarning, match="broker_pool: no meaning in Celeriac"):
        app.config_from_object(config)
    assert app.conf.result_expires == 60
    assert app.conf.task_always_eager is True
    assert "broker_pool" not in app.conf.extra  # warned about, not kept


@pytest.mark.parametrize("partitions", [1, 4])
def test_submission_is_one_atomic_record_and_stream_entry(
    redis_url: str, r: redis.Redis, partitions: int
) -> None:
    app = App("t", redis_url=redis_url, partitions=partitions)
    result = app.send_task("x.y", [1], {"k": 2}, priority=7, queue="q1")
    keys = Keys.from_settings(app.conf)
    part = keys.partition(result.id)
    assert r.xlen(keys.stream(part, "q1", 7)) == 1
    run = result.info()
    assert run is not None
    assert run["state"] == states.PENDING and run["task"] == "x.y" and run["queue"] == "q1"
    assert run["created_at"].endswith("Z")
    assert r.zscore(keys.history(part), result.id) is not None
    assert all(f"{{{part}}}".encode() in key for key in r.keys("*"))  # all in its partition
    app.close()


def test_same_task_id_twice_creates_one_run(redis_url: str, r: redis.Redis) -> None:
    app = App("t", redis_url=redis_url)
    first = app.send_task("x.y", [1], task_id="fixed-id")
    second = app.send_task("x.y", [1], task_id="fixed-id")
    assert first.id == second.id == "fixed-id"
    keys = Keys.from_settings(app.conf)
    assert r.xlen(keys.stream(keys.partition("fixed-id"), "default", 5)) == 1
    app.close()


def test_bad_priority_and_queue_are_refused_before_anything_is_written(
    redis_url: str, r: redis.Redis
) -> None:
    app = App("t", redis_url=redis_url)
    with pytest.raises(InvalidRequest, match="priority"):
        app.send_task("x.y", priority=10)
    with pytest.raises(InvalidRequest, match="queue"):
        app.send_task("x.y", queue="a{b}")
    assert r.dbsize() == 0
    app.close()


def test_unknown_run_reads_as_pending(redis_url: str) -> None:
    app = App("t", redis_url=redis_url)
    assert app.AsyncResult("nope").state == states.PENDING
    assert app.AsyncResult("nope").info() is None
    app.close()
