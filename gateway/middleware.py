"""Pure ASGI middleware, and the one function that assembles the stack."""

from __future__ import annotations

from starlette.middleware import Middleware

from gateway.errors import error_response
from gateway.types import ASGIApp, Message, Receive, Scope, Send
from sdk.config import Settings
from sdk.errors import PayloadTooLarge


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Answer 413 for bodies over ``max_body`` bytes, without buffering past the limit.

    A declared Content-Length over the limit is refused before the app runs; a streamed
    (chunked) body fails the app's read as soon as the running total passes the limit, and
    the error handler turns that PayloadTooLarge into the 413.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body over the limit of {self.max_body} bytes",
            details={"limit": self.max_body},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await error_response(self._error())(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise self._error()
            return message

        await self.app(scope, limited, send)


def middleware(settings: Settings) -> list[Middleware]:
    """The stack, outermost first."""
    return [
        Middleware(BodyLimit, max_body=settings.max_body),
    ]
