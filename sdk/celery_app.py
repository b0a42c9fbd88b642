"""``Celery(...)``: an App built from Celery's constructor, so ``from celery import Celery``
becomes ``from sdk import Celery`` and the rest of a project's ``celery.py`` stays.

``broker=`` and ``backend=`` configure Celeriac's one Redis (results live beside the
runs); ``include=`` names task modules the worker imports; ``config_source=`` is
``config_from_object``. Celery's other constructor arguments have no meaning here and
are refused by name, never dropped without a word (docs/migrating-from-celery.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sdk.app import App
from sdk.errors import ConfigurationError

SCHEMES = ("redis", "rediss", "redis+cluster")
#: Celery's constructor arguments with no meaning in Celeriac, as Celery defaults them
_NO_MEANING = {
    "loader": None,
    "amqp": None,
    "events": None,
    "log": None,
    "control": None,
    "tasks": None,
    "changes": None,
    "fixups": None,
    "task_cls": None,
    "autofinalize": True,
    "namespace": None,
    "strict_typing": True,
    "config_source_silent": False,
}


def redis_url_of(broker: str | None, backend: str | None) -> str | None:
    """The one Redis URL a Celery ``broker=``/``backend=`` pair names; ConfigurationError
    for another transport, or for two different servers."""
    for what, url in (("broker", broker), ("backend", backend)):
        if url is not None and urlsplit(url).scheme not in SCHEMES:
            raise ConfigurationError(
                f"{what}={url!r}: Celeriac runs on Redis or Valkey; give a "
                f"{', '.join(s + '://' for s in SCHEMES)} URL"
            )
    if broker and backend and broker != backend:
        raise ConfigurationError(
            f"broker={broker!r} and backend={backend!r} differ: Celeriac keeps results "
            "beside the runs in one Redis; give only broker= (or the same URL twice)"
        )
    return broker or backend


class Celery(App):
    """Celery 5's ``Celery(main, broker=, backend=, include=, config_source=,
    set_as_current=)``; settings may follow as keyword arguments, as Celery's do."""

    def __init__(
        self,
        main: str | None = None,
        *,
        broker: str | None = None,
        backend: str | None = None,
        include: list[str] | tuple[str, ...] | None = None,
        config_source: object | str | None = None,
        set_as_current: bool = True,
        **kwargs: Any,
    ) -> None:
        refused = [k for k, default in _NO_MEANING.items() if k in kwargs and kwargs[k] != default]
        if refused:
            raise ConfigurationError(
                f"Celery({', '.join(f'{k}=' for k in refused)}...): no meaning in Celeriac "
                "(docs/migrating-from-celery.md)"
            )
        settings = {k: v for k, v in kwargs.items() if k not in _NO_MEANING}
        url = redis_url_of(broker, backend)
        if url is not None:
            settings["redis_url"] = url
        super().__init__(main or "celery", set_as_current=set_as_current, **settings)
        self.include = list(include or ())
        if config_source is not None:
            self.config_from_object(config_source)


__all__ = ["SCHEMES", "Celery", "redis_url_of"]
