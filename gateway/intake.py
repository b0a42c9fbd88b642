"""Reading submission requests: content types, bodies, option headers and query options."""

from __future__ import annotations

import math
from typing import Any

import msgspec
from starlette.datastructures import Headers, QueryParams

from sdk.calls import BatchBody, SendOptions, SubmitBody
from sdk.errors import InvalidRequest, PayloadTooLarge, UnsupportedContentType
from sdk.serializers import JSON, MSGPACK, content_type_of

MAX_BATCH = 10_000
BODY_TYPES = (JSON, MSGPACK)  # bodies the gateway decodes; pickle passes through unopened

_decoders: dict[tuple[str, type[Any]], Any] = {
    (JSON, SubmitBody): msgspec.json.Decoder(SubmitBody).decode,
    (JSON, BatchBody): msgspec.json.Decoder(BatchBody).decode,
    (MSGPACK, SubmitBody): msgspec.msgpack.Decoder(SubmitBody).decode,
    (MSGPACK, BatchBody): msgspec.msgpack.Decoder(BatchBody).decode,
}


def content_type(headers: Headers, allowed: tuple[str, ...]) -> str:
    """The request's canonical content type; 415 unless it is one of ``allowed``.

    A request without a Content-Type is taken as JSON.
    """
    ct = content_type_of(headers.get("content-type") or JSON)
    if ct not in allowed:
        raise UnsupportedContentType(
            f"unsupported content type {ct!r}", details={"accepted": list(allowed)}
        )
    return ct


def decode_submit(raw: bytes, ct: str) -> SubmitBody:
    """One run's body; an empty body means no arguments and default options."""
    if not raw.strip():
        return SubmitBody()
    return _decode(raw, ct, SubmitBody)  # type: ignore[no-any-return]


def decode_batch(raw: bytes, ct: str) -> list[SubmitBody]:
    items: list[SubmitBody] = _decode(raw, ct, BatchBody).items
    if not items:
        raise InvalidRequest("a batch needs at least one item")
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH} items, not {len(items)}",
            details={"max_items": MAX_BATCH},
        )
    return items


def _decode(raw: bytes, ct: str, kind: type[Any]) -> Any:
    try:
        return _decoders[ct, kind](raw)
    except msgspec.DecodeError as exc:  # ValidationError too: a field of the wrong type
        raise InvalidRequest(f"invalid {ct} body: {exc}") from None


def options_of(body: SubmitBody) -> SendOptions:
    """The options of a submission body (everything but args and kwargs)."""
    return SendOptions(**{f: getattr(body, f) for f in SendOptions.__struct_fields__})


def header_options(options: SendOptions, headers: Headers, *, batch: bool = False) -> SendOptions:
    """Apply ``Idempotency-Key`` and ``X-Callback-Url`` where the body leaves them unset.

    A batch takes only the callback header: one idempotency key cannot name many runs.
    """
    changes = {}
    if options.idempotency_key is None and "idempotency-key" in headers and not batch:
        changes["idempotency_key"] = headers["idempotency-key"]
    if options.callback_url is None and "x-callback-url" in headers:
        changes["callback_url"] = headers["x-callback-url"]
    return msgspec.structs.replace(options, **changes) if changes else options


# -- options in the query string (pickle bodies carry only the arguments) -------------------
_QUERY_INT = ("priority", "max_retries")
_QUERY_NUMBER = ("countdown",)
_QUERY_TIME = ("eta", "expires")  # seconds, or an ISO 8601 time
QUERY_OPTIONS = ("queue", *_QUERY_INT, *_QUERY_NUMBER, *_QUERY_TIME)


def _number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} must be a finite number, not {value!r}")
    return number


def _query_value(name: str, value: str) -> Any:
    if name in _QUERY_INT:
        try:
            return int(value)
        except ValueError:
            raise InvalidRequest(f"{name} must be an integer, not {value!r}") from None
    if name in _QUERY_NUMBER:
        return _number(name, value)
    if name in _QUERY_TIME:
        try:
            return _number(name, value)
        except InvalidRequest:
            return value  # an ISO 8601 time, parsed (and checked) with the message
    return value


def query_options(query: QueryParams) -> SendOptions:
    unknown = sorted(set(query) - set(QUERY_OPTIONS))
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s): {', '.join(unknown)}",
            details={"accepted": list(QUERY_OPTIONS)},
        )
    return SendOptions(**{k: _query_value(k, v) for k, v in query.items()})
