"""The dispute dossier route: what a subject had allowed at D, as known at K, with proofs.

A thin shell over `projections.dossier.build_dossier` (auditors and admins only: the
dossier shows decrypted evidence, like the history).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from ledger.vocabulary import ALL_ASPECTS, PLATFORM
from projections.dossier import DossierRequest, build_dossier
from services.bootstrap import Services
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

Time = Annotated[Instant | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)]


def dossier_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the dossier route, wired to one deployment."""
    router = APIRouter(prefix="/v1", tags=["audit"], route_class=LedgerRoute)
    audit = [Depends(auth.requires(Access.AUDIT))]

    @router.get(
        "/subjects/{subject}/dossier",
        dependencies=audit,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 409, 422, 503),
        summary="A dispute dossier: decisions at a date, their events, evidence and proofs",
        description=DOSSIER_DESCRIPTION,
    )
    def dossier(
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
    ) -> Response:
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
        return JsonResponse(build_dossier(services.ledger, log, request))

    return router
