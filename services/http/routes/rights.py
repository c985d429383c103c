"""Routes of BRIEF §2.1: content registrations, a content by ISRC, agents' authorities.

Writes go through the write gateway like every other write (roles, `Idempotency-Key`,
group commit, 201 with `{event_id, position, recorded_at}`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from ledger.application import ConsentLedger
from ledger.commands import GrantAuthority, RegisterContent, RevokeAuthority
from ledger.errors import NotFoundError
from projections.merkle_log import LogService
from projections.receipts import build_receipt
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routes.consent import IdempotencyKey, Subject
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    MODEL_PATTERN,
    AuthorityRequest,
    ContentBody,
    ReceiptBody,
    RegistrationRequest,
    identifier,
    instant,
)
from services.http.writes import WriteGateway

Content = Annotated[
    str,
    Path(description="A content (track) id.", json_schema_extra={"pattern": IDENTIFIER_PATTERN}),
]
Agent = Annotated[
    str,
    Path(
        description="An agent acting for the subject.", json_schema_extra={"pattern": MODEL_PATTERN}
    ),
]


class ContentNotFoundError(NotFoundError):
    """No content is registered with the ISRC asked about."""

    title = "Unknown content"


def rights_router(
    ledger: ConsentLedger, log: LogService, gateway: WriteGateway, auth: Authenticator
) -> APIRouter:
    """Return the §2.1 routes, wired to one ledger, its log and the write gateway."""
    router = APIRouter(prefix="/v1", tags=["rights holders"], route_class=LedgerRoute)
    record = [Depends(auth.requires(Access.RECORD))]
    read = [Depends(auth.requires(Access.READ))]
    audit = [Depends(auth.requires(Access.AUDIT))]
    created: dict[str, Any] = {
        "status_code": 201,
        "response_model": ReceiptBody,
        "responses": problem_responses(401, 403, 404, 409, 413, 422, 503),
    }

    @router.post(
        "/content/{content}/registrations",
        dependencies=record,
        summary="Register a content, its owner and contributors",
        **created,
    )
    async def register(
        content: Content,
        body: RegistrationRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> RegisterContent:
            # Reads the content index (one indexed read) for the owner check.
            return ledger.registration(
                identifier(content, field="content"),
                identifier(body.owner, field="owner"),
                [c.model_dump() for c in body.contributors],
                isrc=body.isrc,
                iswc=body.iswc,
                effective_at=instant(body.effective_at, field="effective_at"),
            )

        return await gateway.write(request, command)

    @router.get(
        "/content",
        dependencies=read,
        response_model=ContentBody,
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="Find the content registered with an ISRC",
    )
    def find(isrc: Annotated[str, Query(description="ISO 3901 code.")]) -> Response:
        found = ledger.content_by_isrc(isrc)
        if found is None:
            raise ContentNotFoundError(f"no content is registered with isrc {isrc!r}")
        return JsonResponse(
            {
                "content_id": found.content_id,
                "owner": found.owner,
                "isrc": found.isrc,
                "iswc": found.iswc,
            }
        )

    @router.post(
        "/subjects/{subject}/authorities",
        dependencies=record,
        summary="Let an agent act for a subject",
        **created,
    )
    async def grant_authority(
        subject: Subject,
        body: AuthorityRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> GrantAuthority:
            return GrantAuthority(
                subject=identifier(subject, field="subject"),
                agent=body.agent,
                purposes=body.purposes,
                expires_at=instant(body.expires_at, field="expires_at"),
            )

        return await gateway.write(request, command)

    @router.post(
        "/subjects/{subject}/authorities/{agent}/revocation",
        dependencies=record,
        summary="End an agent's authority for a subject",
        **created,
    )
    async def revoke_authority(
        subject: Subject,
        agent: Agent,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> RevokeAuthority:
            return RevokeAuthority(subject=identifier(subject, field="subject"), agent=agent)

        return await gateway.write(request, command)

    @router.get(
        "/events/{event_id}/receipt",
        dependencies=audit,
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="The signed consent receipt of one event (W3C DPV JSON-LD or Kantara CR)",
    )
    def receipt(
        event_id: Annotated[
            UUID, Path(description="A terms acceptance, grant, revocation or expiry.")
        ],
        format: Annotated[Literal["dpv", "kantara"], Query(description="dpv or kantara")] = "dpv",
    ) -> Response:
        body = build_receipt(ledger, log, event_id, fmt=format)
        media = "application/ld+json" if format == "dpv" else "application/json"
        return JsonResponse(body, media_type=media)

    return router
