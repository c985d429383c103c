"""Every error the API answers, as `application/problem+json` (RFC 9457), from one map.

`STATUS_BY_KIND` is the one translation of the ledger's errors to HTTP: a LedgerError's
`kind` picks the status, its `title` and `detail` become the problem's. Errors of the
HTTP layer itself (authentication, malformed requests, unknown routes) take the same shape.
Each problem carries the request id, so a caller's report can be found in the logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import ErrorKind, InvalidInstantError, LedgerError, StoreUnavailableError
from projections.database import UNREACHABLE_ERRORS
from services.http.routing import MalformedJson
from services.http.schemas import INSTANT_ERROR

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_TYPE_PREFIX: Final = "urn:consent-ledger:problem:"

STATUS_BY_KIND: Final[Mapping[ErrorKind, int]] = {
    ErrorKind.INVALID: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.FORBIDDEN: 403,
}
"""The one map from a ledger error's kind to its HTTP status."""

RETRY_AFTER_SECONDS: Final = "1"
_SLUG = re.compile(r"[^a-z0-9]+")
_log = structlog.get_logger("consent_ledger.api")


class ApiProblem(Exception):
    """An error of the HTTP layer (not of the ledger), answered as a problem."""

    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class ProblemResponse(Response):
    """A response whose body is a problem object, typed `application/problem+json`."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        """Serialise the problem object with orjson."""
        return orjson.dumps(content)


def problem_type(title: str) -> str:
    """Return the problem type URI for a title: `urn:consent-ledger:problem:<slug>`."""
    return PROBLEM_TYPE_PREFIX + (_SLUG.sub("-", title.lower()).strip("-") or "error")


def problem_body(status: int, title: str, detail: str, **extensions: object) -> dict[str, Any]:
    """Return a problem object: type, title, status, detail, request id and extensions."""
    body: dict[str, Any] = {
        "type": problem_type(title),
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extensions)
    return body


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: object,
) -> ProblemResponse:
    """Return a problem+json response."""
    return ProblemResponse(
        problem_body(status, title, detail, **extensions), status_code=status, headers=headers
    )


def ledger_problem(error: LedgerError) -> ProblemResponse:
    """Translate a ledger error by its kind (the one map)."""
    status = STATUS_BY_KIND[error.kind]
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return problem(status, error.title, error.detail, headers=headers)


def validation_problem(errors: Sequence[Any]) -> ProblemResponse:
    """Answer 422 for a request that does not match its schema, naming each bad field.

    The offending input values are not echoed: they may hold personal data.
    """
    found = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "invalid")),
        }
        if not isinstance(error.get("input"), MalformedJson)
        else {"location": "body", "message": error["input"].message}
        for error in errors
    ]
    title = "Invalid request"
    if found:
        first = found[0]
        detail = f"{first['location'] or 'request'}: {first['message']}"
        if len(found) > 1:
            detail += f" (and {len(found) - 1} more)"
        if errors[0].get("type") == INSTANT_ERROR:  # the ledger's time rule: its title
            title = InvalidInstantError.title
    else:
        detail = "the request does not match its schema"
    return problem(422, title, detail, errors=found)


async def _on_ledger_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, LedgerError)
    if error.kind is ErrorKind.UNAVAILABLE:
        _log.warning("store_unavailable", title=error.title)
    return ledger_problem(error)


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError | ValidationError)
    return validation_problem(error.errors())


async def _on_api_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiProblem)
    return problem(error.status, error.title, error.detail, headers=error.headers)


async def _on_http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    title = {
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
    }.get(error.status_code, "HTTP error")
    detail = error.detail if isinstance(error.detail, str) else title
    if error.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    return problem(error.status_code, title, detail, headers=error.headers)


async def _on_store_unreachable(request: Request, error: Exception) -> Response:
    _log.warning("store_unavailable", error_type=type(error).__name__)
    return ledger_problem(StoreUnavailableError(f"the store is unavailable: {error}"))


async def _on_unexpected(request: Request, error: Exception) -> Response:
    _log.exception("unhandled_error", error_type=type(error).__name__)
    return problem(500, "Internal error", "the server failed to answer; see its logs")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` as problem+json."""
    app.add_exception_handler(LedgerError, _on_ledger_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    for error_type in UNREACHABLE_ERRORS:
        app.add_exception_handler(error_type, _on_store_unreachable)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI `responses` entries documenting these statuses as problem+json."""
    descriptions = {
        401: "No API key, or an unknown one",
        403: "The key's role may not use this route",
        404: "Unknown subject, event or terms version",
        409: "Conflicts with the ledger (duplicate, already voided, erased, idempotency clash)",
        413: "The request is too large",
        422: "Invalid input: malformed body or parameter, unknown purpose or aspect",
        503: "The store is unavailable; nothing was written",
    }
    return {
        status: {
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
