"""Exceptions across the wire: describe one in a worker, rebuild it in the caller."""

from __future__ import annotations

import base64
import builtins
import sys
import traceback as tb
from typing import Any

from sdk.errors import CeleriacError, TaskError
from sdk.serializers import Codec


def type_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``module.Class`` otherwise (SPEC §12)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type_name(exc),
        "message": str(exc),
        "traceback": "".join(tb.format_exception(exc)),
    }


def _class_named(name: str) -> type[BaseException] | None:
    """A local exception class for a remote type name, looked up but never imported."""
    if "." not in name:
        cls = getattr(builtins, name, None)
    else:
        module, _, qualname = name.rpartition(".")
        cls = getattr(sys.modules.get(module), qualname, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return None


def rebuild(error: dict[str, Any], codec: Codec) -> BaseException:
    """The original exception where it can be rebuilt, else ``TaskError``.

    A pickled exception is used only when its signature verifies; otherwise the class is
    found by name among builtins and already-imported modules and given the message.
    """
    remote_tb = error.get("traceback")
    exc: BaseException | None = None
    encoded = error.get("encoded")
    if encoded:
        try:
            loaded = codec.decode(
                base64.b64decode(encoded["data"]), encoded["content_type"], encoded.get("signature")
            )
            exc = loaded if isinstance(loaded, BaseException) else None
        except CeleriacError:
            exc = None
    if exc is None:
        cls = _class_named(error.get("type", ""))
        if cls is not None:
            try:
                exc = cls(error.get("message", ""))
            except Exception:  # a constructor with other arguments: fall back below
                exc = None
    if exc is None:
        return TaskError(error.get("type", "Exception"), error.get("message", ""), remote_tb)
    if remote_tb:
        exc.add_note(f"\nRemote traceback:\n{remote_tb}")
    return exc
