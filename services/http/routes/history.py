"""The audit route: a subject's history, paged, with its evidence opened (auditors only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from ledger.application import ConsentLedger
from ledger.errors import NotFoundError
from projections.history import DEFAULT_HISTORY_PAGE, history_page
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    MAX_POSITION,
    TIME_DESCRIPTION,
    TIME_EXAMPLES,
    HistoryBody,
    Instant,
    identifier,
    instant,
)

MAX_HISTORY_PAGE = 10_000


class UnknownSubjectError(NotFoundError):
    """Refuse a history for a subject the ledger holds no event about."""

    title = "Unknown subject"

    def __init__(self, subject: str) -> None:
        super().__init__(f"the ledger holds no event about subject {subject!r}")
        self.subject = subject


def history_router(ledger: ConsentLedger, auth: Authenticator) -> APIRouter:
    """Return the history route, wired to one ledger."""
    router = APIRouter(prefix="/v1", tags=["audit"], route_class=LedgerRoute)
    audit = [Depends(auth.requires(Access.AUDIT))]

    @router.get(
        "/subjects/{subject}/history",
        dependencies=audit,
        response_model=HistoryBody,
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="A subject's events as known at an instant, with decrypted evidence",
    )
    def history(
        subject: Annotated[str, Path(json_schema_extra={"pattern": IDENTIFIER_PATTERN})],
        limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = DEFAULT_HISTORY_PAGE,
        after: Annotated[
            int, Query(ge=0, le=MAX_POSITION, description="Show events after this position.")
        ] = 0,
        at: Annotated[
            Instant | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)
        ] = None,
        known_at: Annotated[
            Instant | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)
        ] = None,
    ) -> Response:
        subject = identifier(subject, field="subject")
        items = ledger.history(
            subject, at=instant(at, field="at"), known_at=instant(known_at, field="known_at")
        )
        if not items and not ledger.subject_entries(subject):
            raise UnknownSubjectError(subject)
        return JsonResponse(history_page(subject, items, after=after, limit=limit))

    return router
