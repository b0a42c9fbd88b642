"""A task's argument schema (JSON Schema) derived from its function's type hints.

Executors publish it in the catalog; the gateway validates submissions against it, so a
caller in any language learns the mistake as a 422 before a run is queued.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import msgspec

_ANY: dict[str, Any] = {}


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is inspect.Parameter.empty or hint is Any:
        return dict(_ANY)
    try:
        schema: dict[str, Any] = msgspec.json.schema(hint)
    except (TypeError, ValueError, NameError):
        return dict(_ANY)  # a type JSON cannot describe: accept anything, the task decides
    return _inline(schema)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Fold ``$defs`` into the schema so each parameter's schema stands alone."""
    defs = schema.pop("$defs", None)
    if not defs:
        return schema

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def describe(fn: Callable[..., Any], *, bound: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The JSON Schema of ``fn``'s parameters and the names of its positional ones.

    ``bound`` drops the first parameter (``self`` of ``bind=True`` tasks).
    """
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    params = list(sig.parameters.values())[1 if bound else 0 :]
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional: list[str] = []
    extra = False
    for prm in params:
        if prm.kind is prm.VAR_POSITIONAL or prm.kind is prm.VAR_KEYWORD:
            extra = True
            continue
        properties[prm.name] = _type_schema(hints.get(prm.name, prm.annotation))
        if prm.default is prm.empty:
            required.append(prm.name)
        elif _jsonable(prm.default):
            properties[prm.name]["default"] = prm.default
        if prm.kind is not prm.KEYWORD_ONLY:
            positional.append(prm.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": extra,
    }
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        schema["x-var-positional"] = True
    return schema, positional


def _jsonable(value: Any) -> bool:
    try:
        msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError):
        return False
    return True
