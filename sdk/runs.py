"""The run record as clients see it: the JSON of ``GET /runs/{id}``.

Built here from the Redis hash so the gateway and the SDK's direct Redis path show
exactly the same object.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from sdk import protocol as p
from sdk.errors import CeleriacError
from sdk.serializers import Codec

Fields = dict[bytes, bytes]
RunJSON = dict[str, Any]

_json = msgspec.json.Decoder()


def _text(fields: Fields, name: str) -> str | None:
    raw = fields.get(name.encode())
    return raw.decode() if raw is not None else None


def _int(fields: Fields, name: str) -> int | None:
    raw = fields.get(name.encode())
    return int(raw) if raw is not None else None


def _encoded(data: bytes, content_type: str, signature: str | None) -> dict[str, Any]:
    return {
        "content_type": content_type,
        "data": base64.b64encode(data).decode(),
        "signature": signature,
    }


def _result(fields: Fields, codec: Codec) -> tuple[Any, dict[str, Any] | None]:
    """The result as JSON, or (None, encoded) when it is a payload only the SDK can open."""
    raw = fields.get(p.F_RESULT.encode())
    if raw is None:
        return None, None
    ct = _text(fields, p.F_RESULT_CT) or p.JSON
    sig = _text(fields, p.F_RESULT_SIG)
    if codec.serializer(ct).requires_signature:
        return None, _encoded(raw, ct, sig)
    try:
        return codec.decode(raw, ct), None
    except CeleriacError:
        return None, _encoded(raw, ct, sig)


def webhook_view(url: str | None, state: str = "pending", attempts: list[Any] | None = None) -> Any:
    """The run's ``"webhook"`` object (SPEC §12), or None for a run without a callback."""
    if url is None:
        return None
    return {"url": url, "state": state, "attempts": attempts or []}


def _webhook(fields: Fields) -> Any:
    raw = fields.get(p.F_WEBHOOK.encode())
    return _json.decode(raw) if raw else webhook_view(_text(fields, p.F_CALLBACK))


def run_json(run_id: str, fields: Fields, codec: Codec) -> RunJSON:
    """The public JSON view of a run record (SPEC §3, GET /runs/{id})."""
    result, result_encoded = _result(fields, codec)
    error_raw = fields.get(p.F_ERROR.encode())
    error = _json.decode(error_raw) if error_raw else None
    exc = fields.get(p.F_EXC.encode())
    if error is not None and exc is not None:
        error["encoded"] = _encoded(
            exc, codec.serializer("pickle").content_type, _text(fields, p.F_EXC_SIG)
        )
    view: RunJSON = {
        "id": run_id,
        "task": _text(fields, p.F_TASK),
        "state": _text(fields, p.F_STATE),
        "result": result,
        "error": error,
        "attempts": _int(fields, p.F_ATTEMPTS) or 0,
        "queue": _text(fields, p.F_QUEUE),
        "worker": _text(fields, p.F_WORKER),
        "created_at": p.rfc3339(_int(fields, p.F_CREATED)),
        "started_at": p.rfc3339(_int(fields, p.F_STARTED)),
        "finished_at": p.rfc3339(_int(fields, p.F_FINISHED)),
        "runtime_ms": _int(fields, p.F_RUNTIME),
        "parent_id": _text(fields, p.F_PARENT),
        "root_id": _text(fields, p.F_ROOT),
        "webhook": _webhook(fields),
    }
    if result_encoded is not None:
        view["result_encoded"] = result_encoded
    meta = fields.get(p.F_META.encode())
    if meta is not None:
        view["meta"] = _json.decode(meta)
    return view
