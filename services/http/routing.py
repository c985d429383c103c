"""The route class and response type every router of the API uses.

Request bodies are decoded with orjson, which refuses what the ledger could not store
(lone UTF-16 surrogates, NaN, numbers beyond a double); a body that does not decode
fails validation (422) after the route's authentication has run. Responses are
serialised with orjson too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.requests import Request


class MalformedJson:
    """Stands for a body that is not JSON, so that it fails validation like a wrong one.

    FastAPI reads the body before it runs the route's dependencies; decoding errors are
    deferred this way so that authentication still answers first (401 before 422).
    """

    def __init__(self, error: orjson.JSONDecodeError) -> None:
        self.message = f"JSON decode error at byte {error.pos}: {error.msg}"


class OrjsonRequest(Request):
    """A request whose JSON body is decoded by orjson."""

    async def json(self) -> Any:
        """Return the body decoded as JSON, or a MalformedJson that validation refuses."""
        if not hasattr(self, "_json"):
            try:
                self._json: Any = orjson.loads(await self.body())
            except orjson.JSONDecodeError as error:
                self._json = MalformedJson(error)
        return self._json


class LedgerRoute(APIRoute):
    """An APIRoute that hands its endpoint an OrjsonRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that it decodes bodies with orjson."""
        handler = super().get_route_handler()

        async def with_orjson(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return with_orjson


class JsonResponse(Response):
    """A JSON response serialised with orjson.

    Kept rather than the library's: FastAPI's `ORJSONResponse` is deprecated (0.165 warns
    on every use) in favour of serialising a `response_model`, which would cut answers
    down to their declared models (`check` carries optional fields beyond DecisionBody),
    and Starlette's `JSONResponse` uses the standard `json`, several times slower on a
    100,000-pair filter answer.
    """

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        """Serialise with orjson."""
        return orjson.dumps(content)
