"""Request body limits: 413 problem+json beyond 1 MiB (64 MiB for the batch filter)."""

from __future__ import annotations

from typing import Final

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.http.problems import problem

BODY_LIMIT: Final = 1024 * 1024  # bytes; a write's evidence is at most 16 KiB
FILTER_BODY_LIMIT: Final = 64 * 1024 * 1024  # bytes; 100k pairs of long ids fit
FILTER_PATH: Final = "/v1/filter"
LARGE_BODY_PATHS: Final = frozenset({FILTER_PATH, "/v1/ai-signals/lookup"})  # batch reads


class BodyTooLargeError(HTTPException):
    """A request body beyond the route's limit (answered 413 problem+json)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies beyond BODY_LIMIT (FILTER_BODY_LIMIT for the filter) with 413.

    A declared Content-Length beyond the limit is refused before reading; a body that
    grows past it while being read fails the read. Both become problem+json through the
    app's error handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting `receive`."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = FILTER_BODY_LIMIT if scope["path"] in LARGE_BODY_PATHS else BODY_LIMIT
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = problem(413, "Request too large", BodyTooLargeError(limit).detail)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counting_receive, send)
