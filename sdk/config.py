"""Settings, resolved as: command-line flag > environment variable > App(...) > default."""

from __future__ import annotations

import importlib
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sdk.errors import ConfigurationError
from sdk.redis_url import check_redis_url, is_cluster_url

CLUSTER_PARTITIONS = 16  # partitions on a Cluster by default: 6, 6 and 4 on 3 primaries

#: Environment variables, by setting name.
ENV_VARS = {
    "gateway_url": "CELERIAC_GATEWAY_URL",
    "redis_url": "CELERIAC_REDIS_URL",
    "api_key": "CELERIAC_API_KEY",
    "prefix": "CELERIAC_PREFIX",
    "partitions": "CELERIAC_PARTITIONS",
    "signing_key": "CELERIAC_SIGNING_KEY",
    "result_expires": "CELERIAC_RESULT_EXPIRES",
    "history_size": "CELERIAC_HISTORY_SIZE",
    "max_body": "CELERIAC_MAX_BODY",
    "timezone": "CELERIAC_TIMEZONE",
    "max_deliveries": "CELERIAC_MAX_DELIVERIES",
    "worker_dead_after": "CELERIAC_WORKER_DEAD_AFTER",
    "webhook_secret": "CELERIAC_WEBHOOK_SECRET",
    "webhook_allow": "CELERIAC_WEBHOOK_ALLOW",
    "http_task_secret": "CELERIAC_HTTP_TASK_SECRET",
    "http_task_allow": "CELERIAC_HTTP_TASK_ALLOW",
    "webhook_backoff": "CELERIAC_WEBHOOK_BACKOFF",
    "webhook_max_attempts": "CELERIAC_WEBHOOK_MAX_ATTEMPTS",
    "webhook_max_span": "CELERIAC_WEBHOOK_MAX_SPAN",
    "webhook_timeout": "CELERIAC_WEBHOOK_TIMEOUT",
    "webhook_rate": "CELERIAC_WEBHOOK_RATE",
}


@dataclass
class Settings:
    """Every setting a producer, gateway or executor reads (Celery-style names)."""

    gateway_url: str | None = None
    redis_url: str | None = None
    api_key: str | None = None
    prefix: str = "celeriac"
    # Key partitions runs spread over (docs/protocol.md §10); None: the default of the
    # Redis URL's form, 1 on one server and 16 on a Cluster (``partition_count``).
    partitions: int | None = None
    serializer: str = "json"
    signing_key: str | None = None
    result_expires: int = 86_400
    history_size: int = 10_000
    max_body: int = 1 << 20
    timezone: str = "UTC"
    default_queue: str = "default"
    max_deliveries: int = 5  # deliveries of one attempt that never finish before DEAD
    worker_dead_after: float = 15.0  # seconds of silence before a worker's runs are reclaimed
    webhook_secret: str | None = None  # whsec_<base64>, as Standard Webhooks defines
    webhook_allow: str = ""  # networks/hosts callbacks may reach despite the SSRF guard
    http_task_secret: str | None = None  # whsec_<base64>: signs requests to HTTP tasks
    http_task_allow: str = ""  # networks/hosts HTTP task targets may reach (the guard)
    webhook_backoff: float = 5.0  # seconds before the first retry
    webhook_max_attempts: int = 10
    webhook_max_span: float = 3 * 86_400.0  # seconds from the first attempt to the last
    webhook_timeout: float = 10.0  # seconds one attempt may take
    webhook_rate: float = 300.0  # attempts a gateway process starts a second, at most
    events_ping: float = 15.0  # seconds between SSE keep-alive comments on /events
    task_always_eager: bool = False
    task_eager_propagates: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # unknown Celery-style settings

    # -- Celery's ``app.conf`` -----------------------------------------------------------------
    def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Celery's ``app.conf.update``: Celery's names (old or new) or Celeriac's, applied
        in place; the environment still wins, as it does over ``App(...)``."""
        from sdk.celery_settings import translate  # it needs this module's field names

        changed = self.updated(translate({**(values or {}), **more}, FIELDS)).with_env()
        for f in fields(self):
            object.__setattr__(self, f.name, getattr(changed, f.name))

    def __setattr__(self, name: str, value: Any) -> None:
        """``app.conf.beat_schedule = {...}`` and other Celery names: as ``update``."""
        if name in FIELDS:
            object.__setattr__(self, name, value)
        else:
            self.update({name: value})

    def __getitem__(self, name: str) -> Any:
        if name in FIELDS:
            return getattr(self, name)
        return self.extra[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def updated(self, values: Mapping[str, Any]) -> Settings:
        """A copy with ``values`` applied; unknown names are kept in ``extra``."""
        known = {f.name for f in fields(self)} - {"extra"}
        extra = dict(self.extra)
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name in known:
                changes[name] = _coerce(name, value, getattr(self, name))
            else:
                extra[name] = value
        return replace(self, **changes, extra=extra)

    @property
    def partition_count(self) -> int:
        """``partitions``, else the default of ``redis_url``: 1 on one server, 16 on a Cluster."""
        if self.partitions is not None:
            return self.partitions
        return CLUSTER_PARTITIONS if is_cluster_url(self.redis_url) else 1

    def with_env(self, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return self.updated({n: env[v] for n, v in ENV_VARS.items() if env.get(v)})


FIELDS = frozenset(f.name for f in fields(Settings))


def _coerce(name: str, value: Any, current: Any) -> Any:
    if name == "redis_url" and isinstance(value, str):
        return check_redis_url(value)
    if name == "partitions":
        current = 0  # a number, though its default is None
    if isinstance(current, bool) or name.startswith("task_always"):
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    for kind in (int, float):
        if type(current) is kind and not isinstance(value, kind):
            try:
                return kind(value)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"setting {name} must be a number, not {value!r}"
                ) from None
    return value


def settings_from_object(obj: object | str) -> dict[str, Any]:
    """Celery's ``config_from_object`` source: the public settings of a module, an object
    or a mapping; a string names a module (``"proj.settings"``) or an attribute of one
    (``"django.conf:settings"``). Names come back as given (see sdk/celery_settings.py)."""
    if isinstance(obj, str):
        module_name, _, attr = obj.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import config module {module_name!r}: {exc}") from exc
        if attr:
            obj = getattr(obj, attr)
    if isinstance(obj, Mapping):
        items = list(obj.items())
    else:  # dir(), not vars(): Django's settings are a lazy object
        items = [(k, getattr(obj, k)) for k in dir(obj) if not k.startswith("_")]
    return {
        k: v
        for k, v in items
        if not k.startswith("_") and not callable(v) and not isinstance(v, types.ModuleType)
    }
