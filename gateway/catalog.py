"""The task catalog: entries executors write to ``Keys.tasks``, cached and validated here.

Entries are re-read at most every ``max_age`` seconds, and once more on a miss so a task
registered a moment ago is found. Each entry's JSON Schema is compiled once per content.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import fastjsonschema
import msgspec

from sdk.clients import AsyncClient
from sdk.errors import InvalidArguments, TaskNotFound
from sdk.protocol import now_ms
from sdk.protocol.keys import Keys

log = logging.getLogger(__name__)

Validator = Callable[[Any], Any]
RawHash = dict[bytes, bytes]
LIVE_MS = 15_000  # a worker silent for longer is dead (SPEC §12)

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder(order="sorted").encode


@functools.lru_cache(maxsize=1024)
def _compile(schema_json: bytes) -> Validator | None:
    """A validator for one parameters schema; None (accept anything) if it cannot compile."""
    schema = _decode.decode(schema_json)
    for use_formats in (True, False):
        try:
            validator: Validator = fastjsonschema.compile(
                schema, use_default=False, use_formats=use_formats
            )
            return validator
        except fastjsonschema.JsonSchemaDefinitionException:
            continue
    log.warning("task schema does not compile; its arguments go unchecked: %s", schema_json)
    return None


def _invalid(exc: fastjsonschema.JsonSchemaValueException) -> InvalidArguments:
    path = [str(p) for p in (exc.path or ["data"])][1:]
    where = f"argument {'.'.join(path)!r}" if path else "arguments"
    message = exc.message.replace(exc.name, where, 1) if exc.name else exc.message
    return InvalidArguments(message, details={"argument": ".".join(path) or None, "rule": exc.rule})


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalog entry: the JSON an executor registered, and its validator."""

    data: dict[str, Any]
    validator: Validator | None

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def queue(self) -> str:
        return str(self.data.get("queue") or "default")

    @property
    def options(self) -> dict[str, Any]:
        opts = self.data.get("options")
        return opts if isinstance(opts, dict) else {}

    @property
    def parameters(self) -> dict[str, Any]:
        params = self.data.get("parameters")
        return params if isinstance(params, dict) else {}

    def check(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """Raise InvalidArguments unless ``args``/``kwargs`` fit the task's signature."""
        bound = self._bind(args, kwargs)
        self._check_names(bound)
        if self.validator is None:
            return
        try:
            self.validator(bound)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _invalid(exc) from None

    def check_after(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """As ``check``, for a run given a value in front of ``args`` later (a chain's
        later link, a chord's body): the count and the names only, since that value is
        not known yet."""
        self._check_names(self._bind([_LATER, *args], kwargs))

    def _bind(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by name: positional ones mapped through ``positional``, then kwargs."""
        names: list[str] = list(self.data.get("positional") or [])
        if len(args) > len(names) and not self.parameters.get("x-var-positional"):
            raise InvalidArguments(
                f"{self.name} takes {len(names)} positional argument(s) but {len(args)} were given",
                details={"positional": names},
            )
        bound = dict(zip(names, args, strict=False))
        for key in kwargs:
            if key in bound:
                raise InvalidArguments(
                    f"{self.name} got multiple values for argument {key!r}",
                    details={"argument": key},
                )
        bound.update(kwargs)
        return bound

    def _check_names(self, bound: dict[str, Any]) -> None:
        """Missing and unexpected names, reported as Python would rather than as schema."""
        params = self.parameters
        missing = [n for n in params.get("required") or () if n not in bound]
        if missing:
            raise InvalidArguments(
                f"{self.name} is missing required argument(s): {', '.join(missing)}",
                details={"missing": missing},
            )
        if params.get("additionalProperties") is False:
            unexpected = sorted(set(bound) - set(params.get("properties") or {}))
            if unexpected:
                raise InvalidArguments(
                    f"{self.name} got unexpected argument(s): {', '.join(unexpected)}",
                    details={"unexpected": unexpected},
                )


_LATER = object()  # stands for the value a run is given in front of its args later


def _entry(raw: bytes) -> Entry | None:
    try:
        data = _decode.decode(raw)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError("not a catalog entry object")
    except (msgspec.DecodeError, ValueError) as exc:
        log.warning("skipping malformed catalog entry: %s", exc)
        return None
    params = data.get("parameters")
    return Entry(data, _compile(_encode(params)) if isinstance(params, dict) else None)


class Catalog:
    """Read-through cache of the ``Keys.tasks`` hash."""

    def __init__(self, client: AsyncClient, keys: Keys, *, max_age: float = 1.0) -> None:
        self._redis = client
        self._keys = keys
        self._max_age = max_age
        self._raw: RawHash = {}
        self._entries: dict[str, Entry] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _load(self, raw: RawHash) -> None:
        entries: dict[str, Entry] = {}
        for field, value in raw.items():
            name = field.decode(errors="replace")
            old = self._entries.get(name)
            entry = old if old is not None and self._raw.get(field) == value else _entry(value)
            if entry is not None:
                entries[name] = entry
        self._raw, self._entries = raw, entries

    async def entries(self) -> dict[str, Entry]:
        """Every registered task, at most ``max_age`` seconds old."""
        if time.monotonic() - self._loaded_at >= self._max_age:
            async with self._lock:
                if time.monotonic() - self._loaded_at >= self._max_age:
                    self._load(cast(RawHash, await self._redis.hgetall(self._keys.tasks)))
                    self._loaded_at = time.monotonic()
        return self._entries

    def invalidate(self) -> None:
        """Forget what was read: this gateway just changed the catalog (other gateways
        see the change within ``max_age``)."""
        self._raw, self._entries, self._loaded_at = {}, {}, float("-inf")

    async def get(self, name: str) -> Entry:
        """The entry for ``name``; re-read from Redis once if the cache lacks it."""
        entry = (await self.entries()).get(name)
        if entry is not None:
            return entry
        raw = cast(bytes | None, await self._redis.hget(self._keys.tasks, name))
        entry = None if raw is None else _entry(raw)
        if raw is None or entry is None:
            raise TaskNotFound(f"no task named {name!r} is registered", details={"task": name})
        self._entries[name] = entry
        self._raw[name.encode()] = raw
        return entry

    async def live_workers(self) -> dict[str, int]:
        """Task name -> number of live workers that registered it."""
        raw = cast(RawHash, await self._redis.hgetall(self._keys.workers))
        cutoff = now_ms() - LIVE_MS
        counts: dict[str, int] = {}
        for value in raw.values():
            try:
                worker = _decode.decode(value)
                if int(worker.get("last_heartbeat") or 0) < cutoff:
                    continue
                for task in set(worker.get("tasks") or ()):
                    counts[task] = counts.get(task, 0) + 1
            except (msgspec.DecodeError, AttributeError, TypeError, ValueError):
                continue
        return counts


def public(entry: Entry, workers: dict[str, int]) -> dict[str, Any]:
    """The JSON of ``GET /tasks/{name}``: the entry plus its count of live workers."""
    return {**entry.data, "workers": workers.get(entry.name, 0)}
