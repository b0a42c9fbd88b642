"""The one place where exceptions become HTTP statuses and the JSON error model.

Every error answer is ``{"error": {"code", "message", "details"?}}`` (SPEC §3).
"""

from __future__ import annotations

from typing import Any

import redis.exceptions as redis_errors
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.responses import JSONResponse
from sdk.errors import (
    BrokerUnavailable,
    CeleriacError,
    Conflict,
    InvalidArguments,
    InvalidSchedule,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    SignatureError,
    UnsupportedContentType,
)

#: Status per exception class; the most specific class in an exception's MRO wins.
#: SignatureError is 403, not 400: the request is well-formed, but its payload carries
#: no valid proof that the caller may send pickle (or pickle is disabled entirely).
STATUS: dict[type[CeleriacError], int] = {
    ProtocolError: 400,  # also InvalidRequest, SerializationError
    SignatureError: 403,
    NotFound: 404,  # TaskNotFound, RunNotFound
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedContentType: 415,
    InvalidArguments: 422,
    InvalidSchedule: 422,  # bad trigger, time zone, or a task the catalog lacks
    BrokerUnavailable: 503,
}

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_content_type",
}

RETRY_AFTER = {"Retry-After": "1"}


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _status_of(exc: CeleriacError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: Exception) -> Response:
    """The JSON answer for any exception (500 only for what must be a bug)."""
    # RedisClusterException: a cluster client's "no node answers" (and its other refusals)
    if isinstance(exc, redis_errors.RedisError | redis_errors.RedisClusterException):
        exc = BrokerUnavailable(f"Redis unavailable: {exc}")
    if isinstance(exc, CeleriacError):
        status = _status_of(exc)
        headers = RETRY_AFTER if status == 503 else None
        return JSONResponse(_body(exc.code, exc.message, exc.details), status, headers)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(_body(code, exc.detail), exc.status_code, exc.headers)
    # Starlette re-raises it after this answer is sent, so the server logs the traceback.
    return JSONResponse(_body("internal_error", "internal error (a bug: please report it)"), 500)


async def handle(request: Request, exc: Exception) -> Response:
    return error_response(exc)


#: For Starlette's ``exception_handlers``: everything goes through ``handle``.
HANDLERS: dict[Any, Any] = {
    CeleriacError: handle,
    HTTPException: handle,
    redis_errors.RedisError: handle,
    redis_errors.RedisClusterException: handle,
    Exception: handle,
}
