"""Celery's setting names, old and new, as Celeriac settings (docs/migrating-from-celery.md).

``translate`` turns what a Celery project configures (``config_from_object``, with or
without ``namespace="CELERY"``; ``app.conf.update``) into Celeriac's settings. A name
that maps is used; one with no meaning here warns once, by name, saying why; nothing
is dropped without a word.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sdk.errors import ConfigurationError

SCHEMES = ("redis", "rediss", "redis+cluster")

#: Celery's pre-4.0 upper-case names, by their new names (from Celery 5.7's table)
OLD_NAMES = {
    "BROKER_URL": "broker_url",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_ROUTES": "task_routes",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
}

#: Celery names that are Celeriac settings under another name
RENAMED = {
    "task_default_queue": "default_queue",
    "task_serializer": "serializer",
}

#: Celery names with no meaning here, and what to do instead
NO_MEANING = {
    "worker_concurrency": "give the worker -c N",
    "worker_prefetch_multiplier": "give the worker --prefetch N",
    "worker_max_tasks_per_child": "give the worker --max-tasks-per-child N",
    "task_acks_late": "a run is always acknowledged once its outcome is stored",
    "task_track_started": "STARTED is always recorded",
    "result_serializer": "a result is encoded as its run's arguments were",
    "accept_content": "executors take JSON and msgpack, and pickle only when signed",
    "enable_utc": "times are UTC inside; timezone= sets the schedules' zone",
    "task_ignore_result": "give ignore_result= per task or per run",
    "task_time_limit": "give time_limit= per task",
    "task_soft_time_limit": "give soft_time_limit= per task",
    "task_default_rate_limit": "give rate_limit= per task",
    "task_routes": "give queue= per task or per run",
    "broker_transport_options": "there is no visibility timeout: dead workers' runs are reclaimed",
    "broker_connection_retry_on_startup": "every component retries Redis with backoff",
}

_warned: set[str] = set()


class CelerySettingWarning(UserWarning):
    """A Celery setting that has no meaning in Celeriac."""


def redis_url_of(broker: str | None, backend: str | None) -> str | None:
    """The one Redis URL a Celery broker/backend pair names; ConfigurationError for
    another transport, or for two different servers."""
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


def _warn(name: str, why: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"Celery setting {name}: no meaning in Celeriac ({why})",
                      CelerySettingWarning, stacklevel=4)  # fmt: skip


def _names(values: Mapping[str, Any], namespace: str | None) -> Iterable[tuple[str, Any]]:
    """(new lower-case name, value) for each setting; with ``namespace``, only the names
    it prefixes (``CELERY_BROKER_URL`` under ``"CELERY"``), as Celery's loader reads them."""
    prefix = f"{namespace}_" if namespace else ""
    for key, value in values.items():
        if key.startswith("_") or not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        yield OLD_NAMES.get(name, OLD_NAMES.get(key, name.lower())), value


def translate(
    values: Mapping[str, Any], known: Iterable[str], namespace: str | None = None
) -> dict[str, Any]:
    """Celeriac settings for ``values``; ``known``: Celeriac's own setting names, used as
    they are. Names that mean nothing here warn (once each) and are left out."""
    own = set(known)
    out: dict[str, Any] = {}
    broker: str | None = None
    backend: str | None = None
    for name, value in _names(values, namespace):
        if name == "broker_url":
            broker = value
        elif name == "result_backend":
            backend = value
        elif name == "result_expires" and isinstance(value, timedelta):
            out[name] = int(value.total_seconds())
        elif name in ("imports", "include"):
            out["include"] = [*out.get("include", ()), *value]
        elif name == "beat_schedule" or name in own:
            out[name] = value
        elif name in RENAMED:
            out[RENAMED[name]] = value
        elif name in NO_MEANING:
            _warn(name, NO_MEANING[name])
        else:
            _warn(name, "not a setting Celeriac knows")
    url = redis_url_of(broker, backend)
    if url is not None:
        out["redis_url"] = url
    return out


__all__ = [
    "NO_MEANING",
    "OLD_NAMES",
    "RENAMED",
    "SCHEMES",
    "CelerySettingWarning",
    "redis_url_of",
    "translate",
]
