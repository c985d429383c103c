"""The dispute dossier route: what a subject had allowed at D, as known at K, with proofs.

Thin shells over `projections.dossier.build_dossier` (JSON) and
`services.dossier_pdf.render_dossier_pdf` (PDF) (auditors and admins only: the
dossier shows decrypted evidence, like the history).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from ledger.vocabulary import ALL_ASPECTS, PLATFORM
from projections.dossier import DossierRequest, build_dossier
from services.bootstrap import Services
from services.dossier_pdf import render_dossier_pdf
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    PARTY_PATTERN,
    TIME_DESCRIPTION,
    TIME_EXAMPLES,
    Instant,
    identifier,
    instant,
)

MAX_DOSSIER_PURPOSES = 64

DOSSIER_DESCRIPTION = """\
One self-contained JSON document for a dispute: a decision per purpose at `at` as known
at `known_at` (both default to now, and the document states the instants it used), the
terms version in force with its document hash, every event about the subject the ledger
held at `known_at` with its evidence, the log record that was hashed and its RFC 9162
inclusion proof, and the signed checkpoint the proofs lead to. Its `verification` field
says how to check it offline (docs/legal-timeline.md).
"""

PDF_DESCRIPTION = """\
The same dossier printed by headless Chromium: cover, decisions, the at-a-glance matrix,
the timeline chart, the terms in force, every event with its evidence and proof, the signed
checkpoint and a "how to verify" page. The JSON dossier is attached as `dossier.json`;
`consent-ledger dossier verify FILE.pdf --public-key KEY` checks it. 503 without Chromium.
"""

Time = Annotated[Instant | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)]


def dossier_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the dossier route, wired to one deployment."""
    router = APIRouter(prefix="/v1", tags=["audit"], route_class=LedgerRoute)
    audit = [Depends(auth.requires(Access.AUDIT))]

    def dossier_of(
        subject: Annotated[str, Path(json_schema_extra={"pattern": IDENTIFIER_PATTERN})],
        at: Time = None,
        known_at: Time = None,
        purpose: Annotated[
            list[str] | None,
            Query(
                max_length=MAX_DOSSIER_PURPOSES,
                description="A purpose to decide; repeat it for several. Default: every one.",
            ),
        ] = None,
        party: Annotated[str, Query(json_schema_extra={"pattern": PARTY_PATTERN})] = PLATFORM,
        content: Annotated[
            str | None, Query(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
        ] = None,
        aspect: Annotated[str, Query(description="music, voice, likeness or all.")] = ALL_ASPECTS,
    ) -> dict[str, Any]:
        request = DossierRequest(
            subject=identifier(subject, field="subject"),
            at=instant(at, field="at"),
            known_at=instant(known_at, field="known_at"),
            purposes=tuple(purpose or ()),
            party=party,
            content=identifier(content, field="content") if content is not None else None,
            aspect=aspect,
        )
        log = getattr(services, "log", None)  # a deployment without a log: no proofs
        return build_dossier(services.ledger, log, request)

    # A default rather than an Annotated alias: this module's annotations are strings,
    # which FastAPI resolves in the module's globals, where `dossier_of` is not.
    dossier_of_request = Depends(dossier_of)

    @router.get(
        "/subjects/{subject}/dossier",
        dependencies=audit,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 409, 422, 503),
        summary="A dispute dossier: decisions at a date, their events, evidence and proofs",
        description=DOSSIER_DESCRIPTION,
    )
    def dossier(body: dict[str, Any] = dossier_of_request) -> Response:
        return JsonResponse(body)

    @router.get(
        "/subjects/{subject}/dossier.pdf",
        dependencies=audit,
        response_class=Response,
        responses={
            200: {"content": {"application/pdf": {}}, "description": "The court-ready PDF."},
            **problem_responses(401, 403, 404, 409, 422, 503),
        },
        summary="The dispute dossier as a court-ready PDF, the JSON dossier attached",
        description=PDF_DESCRIPTION,
    )
    def dossier_pdf(body: dict[str, Any] = dossier_of_request) -> Response:
        pdf = render_dossier_pdf(body)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", body["subject"])
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="dossier-{name}.pdf"'},
        )

    return router
