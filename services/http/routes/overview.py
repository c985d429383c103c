"""The legal team's read routes: find subjects by prefix, and a subject's chart and matrix.

Thin shells over the read models' subject index and
`projections.timeline_chart.subject_overview` (auditors and admins only, like the history).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from projections.history import DEFAULT_SUBJECT_PAGE, MAX_SUBJECT_PAGE, subject_page
from projections.timeline_chart import OverviewRequest, subject_overview
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routes.history import UnknownSubjectError
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    TIME_DESCRIPTION,
    TIME_EXAMPLES,
    identifier,
    instant,
)

Time = Annotated[str | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)]

OVERVIEW_DESCRIPTION = """\
The picture the timeline page draws: one lane per purpose (and per party, content and
aspect the subject's events name) with allowed/denied bands over effective time from the
first event to today, as the ledger knows it now and, when `known_at` is earlier, as it
knew it then; a marker per event; the terms in force beneath; and a matrix of every
purpose x {platform, each named party, `*`} decided at `at` as known at `known_at`.
"""


PREFIX_PATTERN: Final = IDENTIFIER_PATTERN.replace("{1,256}", "{0,256}")
"""A subject id's start: the identifier rule, possibly empty."""


def overview_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the subject search and overview routes, wired to one deployment."""
    router = APIRouter(prefix="/v1", tags=["audit"], route_class=LedgerRoute)
    audit = [Depends(auth.requires(Access.AUDIT))]

    @router.get(
        "/subjects",
        dependencies=audit,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 422, 503),
        summary="Subjects whose id starts with a prefix, in id order, paged",
        description='Answers `{"subjects": [...], "next"}`; `next` is the `after` of the '
        "following page, null at the end.",
    )
    def subjects(
        prefix: Annotated[str, Query(pattern=PREFIX_PATTERN, description="Start of the id.")] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_SUBJECT_PAGE)] = DEFAULT_SUBJECT_PAGE,
        after: Annotated[
            str | None,
            Query(pattern=IDENTIFIER_PATTERN, description="Show subjects after this id."),
        ] = None,
    ) -> Response:
        services.reader.fresh()
        found = services.projector.view.subjects(prefix, after, limit + 1)
        return JsonResponse(subject_page(found, limit))

    @router.get(
        "/subjects/{subject}/overview",
        dependencies=audit,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="A subject's consent over time (chart) and at a glance (matrix)",
        description=OVERVIEW_DESCRIPTION,
    )
    def overview(
        subject: Annotated[str, Path(json_schema_extra={"pattern": IDENTIFIER_PATTERN})],
        at: Time = None,
        known_at: Time = None,
    ) -> Response:
        request = OverviewRequest(
            identifier(subject, field="subject"),
            at=instant(at, field="at"),
            known_at=instant(known_at, field="known_at"),
        )
        body = subject_overview(services.ledger, request)
        if body is None:
            raise UnknownSubjectError(request.subject)
        return JsonResponse(body)

    return router
