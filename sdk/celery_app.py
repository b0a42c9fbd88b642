"""``Celery(...)``: an App built from Celery's constructor, so ``from celery import Celery``
becomes ``from sdk import Celery`` and the rest of a project's ``celery.py`` stays.

``broker=`` and ``backend=`` configure Celeriac's one Redis (results live beside the
runs); ``include=`` names task modules the worker imports; ``config_source=`` is
``config_from_object``. Celery's other constructor arguments have no meaning here and
are refused by name, never dropped without a word (docs/migrating-from-celery.md).
"""

from __future__ import annotations

from typing import Any

from sdk.app import App
from sdk.celery_settings import redis_url_of, translate
from sdk.config import FIELDS
from sdk.errors import ConfigurationError

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
        settings = translate({k: v for k, v in kwargs.items() if k not in _NO_MEANING}, FIELDS)
        url = redis_url_of(broker, backend)
        if url is not None:
            settings["redis_url"] = url
        super().__init__(main or "celery", set_as_current=set_as_current, **settings)
        self.include = list(include or ())
        if config_source is not None:
            self.config_from_object(config_source)


__all__ = ["Celery"]
