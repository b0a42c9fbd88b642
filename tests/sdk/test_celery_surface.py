"""Celery's names and constructor: a project's ``celery.py`` and task modules run with
only their imports changed (the parts of issue 13 built so far)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk import App, Celery, current, current_app, shared_task
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
