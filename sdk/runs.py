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
from sdk.protocol.record import Fields, RunRecord
from sdk.serializers import Codec

RunJSON = dict[str, Any]

_json = msgspec.json.Decoder()


def _encoded(data: bytes, content_type: str, signature: str | None) -> dict[str, Any]:
    return {
        "content_type": content_type,
        "data": base64.b64encode(data).decode(),
        "signature": signature,
    }


def _result(record: RunRecord, codec: Codec) -> tuple[Any, dict[str, Any] | None]:
    """The result as JSON, or (None, encoded) when it is a payload only the SDK can open."""
    if record.result is None:
        return None, None
    ct = record.result_ct or p.JSON
    if codec.serializer(ct).requires_signature:
        return None, _encoded(record.result, ct, record.result_sig)
    try:
        return codec.decode(record.result, ct), None
    except CeleriacError:
        return None, _encoded(record.result, ct, record.result_sig)


def webhook_view(url: str | None, state: str = "pending", attempts: list[Any] | None = None) -> Any:
    """The run's ``"webhook"`` object (SPEC §12), or None for a run without a callback."""
    if url is None:
        return None
    return {"url": url, "state": state, "attempts": attempts or []}


def run_json(run_id: str, fields: Fields, codec: Codec) -> RunJSON:
    """The public JSON view of a run record (SPEC §3, GET /runs/{id})."""
    record = RunRecord.of(run_id, fields)
    result, result_encoded = _result(record, codec)
    error = _json.decode(record.error) if record.error else None
    if error is not None and record.exc is not None:
        pickle_ct = codec.serializer("pickle").content_type
        error["encoded"] = _encoded(record.exc, pickle_ct, record.exc_sig)
    view: RunJSON = {
        "id": run_id,
        "task": record.task,
        "state": record.state,
        "result": result,
        "error": error,
        "attempts": record.attempts,
        "queue": record.queue,
        "worker": record.worker,
        "created_at": p.rfc3339(record.created_at),
        "started_at": p.rfc3339(record.started_at),
        "finished_at": p.rfc3339(record.finished_at),
        "runtime_ms": record.runtime_ms,
        "parent_id": record.parent_id,
        "root_id": record.root_id,
        "webhook": (
            _json.decode(record.webhook) if record.webhook else webhook_view(record.callback_url)
        ),
    }
    if result_encoded is not None:
        view["result_encoded"] = result_encoded
    if record.meta is not None:
        view["meta"] = _json.decode(record.meta)
    return view
