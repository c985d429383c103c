"""Write routes: terms, acceptances, grants, revocations, voids, erasure (BRIEF §4).

Each route parses its body into a command (`ledger.commands`) and hands it to the write
gateway, which honours `Idempotency-Key`, appends by group commit through the ledger's
write pipeline and answers 201.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import Response

from ledger.commands import AcceptTerms, Erase, Grant, PublishTerms, Revoke, Void
from ledger.errors import InvalidTermsError
from ledger.vocabulary import ALL_ASPECTS, PLATFORM
from services.http.auth import Access, Authenticator
from services.http.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_CHARS
from services.http.problems import problem_responses
from services.http.routing import LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    AcceptanceRequest,
    ErasureRequest,
    GrantRequest,
    ReceiptBody,
    RevocationRequest,
    TermsRequest,
    VoidRequest,
    identifier,
    instant,
)
from services.http.writes import WriteGateway

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Repeat a write safely: the same key and body answer the first answer "
        "again without appending; the same key with another body is 409.",
    ),
]
Subject = Annotated[
    str,
    Path(
        description="A subject (rights holder) id.",
        json_schema_extra={"pattern": IDENTIFIER_PATTERN},
    ),
]

_WRITE_ERRORS = problem_responses(401, 403, 404, 409, 413, 422, 503)


def consent_router(gateway: WriteGateway, auth: Authenticator) -> APIRouter:
    """Return the write routes, wired to the write gateway."""
    router = APIRouter(
        prefix="/v1",
        tags=["writes"],
        route_class=LedgerRoute,
    )
    record = [Depends(auth.requires(Access.RECORD))]
    administer = [Depends(auth.requires(Access.ADMINISTER))]
    created: dict[str, Any] = {
        "status_code": 201,
        "response_model": ReceiptBody,
        "responses": _WRITE_ERRORS,
    }

    @router.post("/terms", dependencies=administer, summary="Publish a terms version", **created)
    async def publish_terms(
        body: TermsRequest, request: Request, idempotency_key: IdempotencyKey = None
    ) -> Response:
        def command() -> PublishTerms:
            effective_from = instant(body.effective_from, field="effective_from")
            if effective_from is None:
                raise InvalidTermsError("effective_from is required")
            return PublishTerms(
                version=body.version,
                effective_from=effective_from,
                clauses=[clause.model_dump() for clause in body.clauses],
                document_sha256=body.document_sha256,
            )

        return await gateway.write(request, command)

    @router.post(
        "/subjects/{subject}/terms-acceptances",
        dependencies=record,
        summary="Record a subject's acceptance of a terms version",
        **created,
    )
    async def accept_terms(
        subject: Subject,
        body: AcceptanceRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> AcceptTerms:
            return AcceptTerms(
                subject=identifier(subject, field="subject"),
                version=body.version,
                effective_at=instant(body.effective_at, field="effective_at"),
                evidence=body.evidence.as_mapping() if body.evidence else None,
                actor=body.actor,
            )

        return await gateway.write(request, command)

    @router.post(
        "/subjects/{subject}/grants", dependencies=record, summary="Record a grant", **created
    )
    async def grant(
        subject: Subject,
        body: GrantRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> Grant:
            expires_at = instant(body.expires_at, field="expires_at")
            conditions = body.conditions
            return Grant(**_scoped(subject, body), expires_at=expires_at, conditions=conditions)

        return await gateway.write(request, command)

    @router.post(
        "/subjects/{subject}/revocations",
        dependencies=record,
        summary="Record a revocation",
        **created,
    )
    async def revoke(
        subject: Subject,
        body: RevocationRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> Revoke:
            return Revoke(**_scoped(subject, body), reason=body.reason)

        return await gateway.write(request, command)

    @router.post(
        "/events/{event_id}/void",
        dependencies=record,
        summary="Void a grant, revocation or acceptance entered in error",
        **created,
    )
    async def void(
        event_id: Annotated[UUID, Path(description="The event to void.")],
        body: VoidRequest,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        return await gateway.write(
            request, lambda: Void(voided_event_id=event_id, reason=body.reason)
        )

    @router.post(
        "/subjects/{subject}/erasure",
        dependencies=administer,
        summary="Erase a subject's personal data (its key is destroyed)",
        **created,
    )
    async def erase(
        subject: Subject,
        request: Request,
        body: ErasureRequest | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        def command() -> Erase:
            return Erase(
                subject=identifier(subject, field="subject"), reason=body.reason if body else None
            )

        return await gateway.write(request, command)

    return router


def _content_ids(content_ids: list[str] | None) -> list[str] | None:
    if content_ids is None:
        return None
    return [identifier(c, field="content id") for c in content_ids]


def _scoped(subject: str, body: GrantRequest | RevocationRequest) -> dict[str, Any]:
    """Return the command fields grants and revocations share, from the path and body."""
    return {
        "subject": identifier(subject, field="subject"),
        "purpose": body.purpose,
        "party": body.party or PLATFORM,
        "content_ids": _content_ids(body.content_ids),
        "aspect": body.aspect or ALL_ASPECTS,
        "effective_at": instant(body.effective_at, field="effective_at"),
        "evidence": body.evidence.as_mapping() if body.evidence else None,
        "model": body.model,
        "actor": body.actor,
    }
