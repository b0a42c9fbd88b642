"""Celery's names and constructor: a project's ``celery.py`` and task modules run with
only their imports changed (the parts of issue 13 built so far)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sdk import App, Celery, celery_settings, current, current_app, shared_task
from sdk.celery_settings import CelerySettingWarning
from sdk.errors import ConfigurationError, MaxRetriesExceeded, MaxRetriesExceededError
from sdk.loader import load_app


@pytest.fixture(autouse=True)
def _own_registry() -> Iterator[None]:
    """Shared tasks join every App made later: keep these tests' out of other tests'."""
    saved = current._registry
    current._registry = current._Registry()
    try:
        yield
    finally:
        current._registry = saved


def test_broker_and_backend_urls_configure_the_one_redis() -> None:
    app = Celery("proj", broker="redis://127.0.0.1:1/0", backend="redis://127.0.0.1:1/0")
    assert app.main == "proj" and app.conf.redis_url == "redis://127.0.0.1:1/0"
    assert Celery(backend="rediss://127.0.0.1:1/2").conf.redis_url == "rediss://127.0.0.1:1/2"
    with pytest.raises(ConfigurationError, match=r"broker='amqp://guest@localhost//'.*redis://"):
        Celery("proj", broker="amqp://guest@localhost//")
    with pytest.raises(ConfigurationError, match="keeps results beside the runs"):
        Celery("proj", broker="redis://127.0.0.1:1/0", backend="redis://127.0.0.1:1/1")
    with pytest.raises(ConfigurationError, match=r"Celery\(loader=...\): no meaning"):
        Celery("proj", loader="celery.loaders.app:AppLoader")
    assert Celery("proj", task_always_eager=True).conf.task_always_eager is True  # settings


def test_current_app_is_the_latest_app_made() -> None:
    first = App("first")
    assert current_app.main == "first"
    second = Celery("second")
    assert current_app.main == "second" and current_app.tasks is second.tasks
    App("aside", set_as_current=False)
    assert current_app.main == "second"
    assert first.main == "first"


def test_shared_tasks_join_every_app_before_and_after() -> None:
    @shared_task
    def early(x: int) -> int:
        return x + 1

    app = Celery("late", task_always_eager=True)
    assert early.name in app.tasks  # declared before the App: taken when it is made

    @shared_task(name="surface.bound", bind=True)
    def later(self: object, x: int) -> int:
        return x * 2

    assert "surface.bound" in app.tasks  # declared after: added to the App there is
    assert early(1) == 2 and early.delay(2).get() == 3  # the current App's task
    assert later.delay(4).get() == 8


def test_no_app_means_a_clear_error_not_a_hidden_default() -> None:
    code = textwrap.dedent(
        """
        from sdk import shared_task
        from sdk.errors import ConfigurationError

        @shared_task
        def ping():
            return "pong"

        try:
            ping.delay()
        except ConfigurationError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no App yet: create one")


def test_include_is_imported_by_the_worker_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = tmp_path / "surfaceproj"
    proj.mkdir()
    (proj / "__init__.py").write_text("")
    (proj / "celery.py").write_text(
        "from sdk import Celery\n"
        "app = Celery('surfaceproj', broker='redis://127.0.0.1:1/0',\n"
        "             include=['surfaceproj.tasks'])\n"
    )
    (proj / "tasks.py").write_text(
        "from surfaceproj.celery import app\n\n@app.task\ndef add(x, y):\n    return x + y\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = load_app("surfaceproj.celery:app")
    assert "surfaceproj.tasks.add" in app.tasks  # imported after the App's own module
    bad = Celery("x", include=["surfaceproj.nothing_here"])
    with pytest.raises(ConfigurationError, match=r"include='surfaceproj\.nothing_here'"):
        bad.import_included()


def test_celerys_exception_names() -> None:
    assert MaxRetriesExceededError is MaxRetriesExceeded


# -- settings ------------------------------------------------------------------------------
@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_settings, "_warned", set())


def test_old_upper_case_names_configure_celeriac(fresh_warnings: None) -> None:
    config = {
        "BROKER_URL": "redis://127.0.0.1:1/3",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/3",
        "CELERY_TASK_RESULT_EXPIRES": timedelta(hours=2),
        "CELERY_ALWAYS_EAGER": True,
        "CELERY_TIMEZONE": "Europe/Paris",
        "CELERY_DEFAULT_QUEUE": "work",
        "CELERYBEAT_SCHEDULE": {"tick": {"task": "proj.tick", "schedule": 10.0}},
        "CELERY_IMPORTS": ["proj.tasks"],
    }
    app = Celery("proj", config_source=config)
    conf = app.conf
    assert conf.redis_url == "redis://127.0.0.1:1/3" and conf.result_expires == 7200
    assert conf.task_always_eager is True and conf.timezone == "Europe/Paris"
    assert conf.default_queue == "work" and conf["beat_schedule"]["tick"]["schedule"] == 10.0
    assert conf.extra["include"] == ["proj.tasks"]


def test_a_django_namespace_reads_only_its_prefix(fresh_warnings: None) -> None:
    settings = types.SimpleNamespace(
        CELERY_BROKER_URL="redis://127.0.0.1:1/4",
        CELERY_TASK_ALWAYS_EAGER=True,
        SECRET_KEY="not celery's",  # a Django setting: not read, no warning
        DEBUG=True,
    )
    app = Celery("proj")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        app.config_from_object(settings, namespace="CELERY")
    assert app.conf.redis_url == "redis://127.0.0.1:1/4" and app.conf.task_always_eager


def test_conf_update_mapping_access_and_beat_schedule_assignment(fresh_warnings: None) -> None:
    app = Celery("proj")
    app.conf.update(task_default_queue="mail", result_expires=60)
    app.conf.beat_schedule = {"every": {"task": "proj.tick", "schedule": 5.0}}
    app.conf["task_serializer"] = "msgpack"
    assert app.conf.default_queue == "mail" and app.conf["result_expires"] == 60
    assert app.conf.get("beat_schedule")["every"]["schedule"] == 5.0
    assert app.conf.serializer == "msgpack" and app.conf.get("nothing", 7) == 7
    with pytest.warns(CelerySettingWarning, match="worker_concurrency.*-c N"):
        app.conf.update(CELERYD_CONCURRENCY=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.conf.update(worker_concurrency=8)  # once per name: no second warning


def test_the_same_settings_mean_the_same_in_celery() -> None:
    """What the tests above read, read by Celery 5 itself (when the bench extra is in)."""
    celery = pytest.importorskip("celery")
    app = celery.Celery("proj")
    app.config_from_object(
        types.SimpleNamespace(CELERY_BROKER_URL="redis://127.0.0.1:1/4", SECRET_KEY="x"),
        namespace="CELERY",
    )
    assert app.conf.broker_url == "redis://127.0.0.1:1/4"
    app.conf.update(task_default_queue="mail")
    app.conf.beat_schedule = {"every": {"task": "proj.tick", "schedule": 5.0}}
    assert app.conf.task_default_queue == "mail" and app.conf["beat_schedule"]["every"]
    old = celery.Celery("old", config_source={"CELERY_ALWAYS_EAGER": True, "BROKER_URL": "x://"})
    assert old.conf.task_always_eager is True and old.conf.broker_url == "x://"


def test_dash_a_finds_the_app_as_celery_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-A proj`` finds ``proj.celery``'s app; ``-A proj.celery``, ``-A proj.celery:app``
    and ``-A proj.celery.app`` name it; a module's ``app`` wins over other Apps in it."""
    proj = tmp_path / "findproj"
    proj.mkdir()
    (proj / "__init__.py").write_text("")
    (proj / "celery.py").write_text(
        "from sdk import Celery\napp = Celery('findproj')\nother = Celery('other')\n"
    )
    (tmp_path / "single.py").write_text("from sdk import App\nmine = App('single')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("findproj", "findproj.celery", "findproj.celery:app", "findproj.celery.app"):
        assert load_app(spec).main == "findproj", spec
    assert load_app("single").main == "single"  # no app or celery attribute: its one App
    with pytest.raises(ConfigurationError, match=r"'findproj\.celery:nothing' is not"):
        load_app("findproj.celery:nothing")
    with pytest.raises(ConfigurationError, match="cannot import 'nosuchproj'"):
        load_app("nosuchproj")


def test_autodiscover_imports_each_packages_tasks_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, tasks in (("shop", True), ("blog", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        if tasks:
            (tmp_path / name / "tasks.py").write_text(
                "from sdk import shared_task\n\n@shared_task\ndef checkout(x):\n    return x\n"
            )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = Celery("proj")
    app.autodiscover_tasks(lambda: ["shop", "blog"])  # read when the worker imports
    assert "shop.tasks.checkout" not in app.tasks
    app.import_included()
    assert "shop.tasks.checkout" in app.tasks  # blog has no tasks module: skipped
    forced = Celery("forced")
    forced.autodiscover_tasks(["shop"], force=True)
    assert "shop.tasks.checkout" in forced.tasks
    with pytest.raises(ConfigurationError, match="needs the packages"):
        forced.autodiscover_tasks()
    forced.autodiscover_tasks(["no_such_package"])
    with pytest.raises(ConfigurationError, match="'no_such_package'"):
        forced.import_included()
