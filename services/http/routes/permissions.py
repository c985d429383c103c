"""Read routes: one check, a batch filter, and the AI signals of a piece of content.

Every answer comes from `services.reader` (the read side's seam), never the event store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ledger.vocabulary import ALL_ASPECTS, PLATFORM
from projections.reader import PermissionReader
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import (
    IDENTIFIER_PATTERN,
    MAX_POSITION,
    MODEL_PATTERN,
    PARTY_PATTERN,
    TIME_DESCRIPTION,
    TIME_EXAMPLES,
    AiSignalsBody,
    DecisionBody,
    FilterAnswer,
    FilterRequest,
    Instant,
    identifier,
    instant,
)

FILTER_BODY_SCHEMA: Final = {"$ref": "#/components/schemas/FilterRequest"}
HTML: Final = "text/html"

Identifier = Annotated[str, Query(json_schema_extra={"pattern": IDENTIFIER_PATTERN})]
MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="Read your writes: reflect at least this position (a write's receipt).",
    ),
]
Time = Annotated[Instant | None, Query(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)]


def permissions_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the check, filter and AI-signals routes, wired to one deployment."""
    router = APIRouter(prefix="/v1", tags=["reads"], route_class=LedgerRoute)
    read = [Depends(auth.requires(Access.READ))]

    @router.get(
        "/check",
        dependencies=read,
        response_model=DecisionBody,
        responses=problem_responses(401, 403, 409, 422, 503),
        summary="May this party use this subject's content for this purpose?",
    )
    def check(
        subject: Identifier,
        purpose: Annotated[str, Query(description="A purpose of the vocabulary.")],
        party: Annotated[str, Query(json_schema_extra={"pattern": PARTY_PATTERN})] = PLATFORM,
        content: Annotated[
            str | None, Query(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
        ] = None,
        aspect: Annotated[str, Query(description="music, voice, likeness or all.")] = ALL_ASPECTS,
        at: Time = None,
        known_at: Time = None,
        min_position: MinPosition = None,
        model: Annotated[
            str | None,
            Query(
                description="Ask about this model (BRIEF §2.1).",
                json_schema_extra={"pattern": MODEL_PATTERN},
            ),
        ] = None,
    ) -> Response:
        return answer_check(
            services.reader,
            subject=subject,
            purpose=purpose,
            party=party,
            content=content,
            aspect=aspect,
            at=at,
            known_at=known_at,
            min_position=min_position,
            model=model,
        )

    @router.post(
        "/filter",
        dependencies=read,
        response_model=FilterAnswer,
        responses=problem_responses(401, 403, 409, 413, 422, 503),
        summary="Which of these (subject, content) pairs may be used? (up to 100,000)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": FILTER_BODY_SCHEMA}},
            }
        },
    )
    async def filter_(request: Request) -> Response:
        raw = await request.body()  # read off the socket as it streams in, capped
        answer = await run_in_threadpool(answer_filter, services, raw)
        return Response(answer, media_type="application/json")

    @router.get(
        "/subjects/{subject}/content/{content}/ai-signals",
        dependencies=read,
        response_model=AiSignalsBody,
        responses={
            200: {
                "description": "The signals, as JSON or (Accept: text/html) as <meta> tags",
                "content": {HTML: {"schema": {"type": "string"}}},
                "headers": {
                    "X-Robots-Tag": {
                        "description": "`noai, noimageai` when generative training is denied",
                        "schema": {"type": "string"},
                    },
                    "tdm-reservation": {
                        "description": "TDMRep: 1 when data mining is denied",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                    },
                    "tdm-policy": {
                        "description": "TDMRep policy URL, when one is configured",
                        "schema": {"type": "string"},
                    },
                },
            },
            **problem_responses(401, 403, 404, 409, 422, 503),
        },
        summary="AI signals of a piece of content, for any third party, now",
    )
    def ai_signals(
        subject: Annotated[str, Path(json_schema_extra={"pattern": IDENTIFIER_PATTERN})],
        content: Annotated[str, Path(json_schema_extra={"pattern": IDENTIFIER_PATTERN})],
        request: Request,
        min_position: MinPosition = None,
    ) -> Response:
        subject = identifier(subject, field="subject")
        content = identifier(content, field="content")
        settings = services.settings
        service = services.signals.configure(settings.tdm_policy_url, settings.content_url_template)
        signals = service.page(subject, content, min_position=min_position).signals
        headers = {**signals.headers(), "Vary": "Accept"}
        if prefers_html(request.headers.get("accept", "")):
            return HTMLResponse(signals.meta_html(), headers=headers)
        return JsonResponse(signals.to_json(), headers=headers)

    return router


def answer_check(
    reader: PermissionReader,
    *,
    subject: str,
    purpose: str,
    party: str = PLATFORM,
    content: str | None = None,
    aspect: str = ALL_ASPECTS,
    at: datetime | None = None,
    known_at: datetime | None = None,
    min_position: int | None = None,
    model: str | None = None,
) -> Response:
    """Answer one check from its query parameters: the route's work, which its fast lane
    (`services.http.fast_check`) shares. Raises the ledger's errors (problem+json)."""
    decision = reader.check(
        identifier(subject, field="subject"),
        purpose,
        party=party,
        content=identifier(content, field="content") if content is not None else None,
        aspect=aspect,
        at=instant(at, field="at"),
        known_at=instant(known_at, field="known_at"),
        min_position=min_position,
        model=model,
    )
    return JsonResponse(decision.to_json())


def answer_in_memory(
    reader: PermissionReader,
    head: int,
    *,
    subject: str,
    purpose: str,
    party: str = PLATFORM,
    content: str | None = None,
    aspect: str = ALL_ASPECTS,
    model: str | None = None,
) -> Response | None:
    """Answer a current check from the in-memory index alone, as `answer_check` would, or
    None when the index cannot (`PermissionReader.check_in_memory`): the fast lane's
    answer on the event loop, with `head` read after the request arrived."""
    decision = reader.check_in_memory(
        head,
        identifier(subject, field="subject"),
        purpose,
        party=party,
        content=identifier(content, field="content") if content is not None else None,
        aspect=aspect,
        model=model,
    )
    return None if decision is None else JsonResponse(decision.to_json())


def answer_filter(services: Services, raw: bytes) -> bytes:
    """Parse a filter body, ask the reader about every pair, and return the JSON answer.

    Every pair is checked before any is asked about, so a bad pair is a 422 and the
    answer is never cut off halfway.
    """
    try:
        body = FilterRequest.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as error:
        raise RequestValidationError(
            [{"loc": ("body", error.pos), "msg": f"JSON decode error: {error.msg}"}]
        ) from None
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_input=False)]
        ) from None
    pairs = [
        (identifier(item["subject"], field="subject"), identifier(item["content"], field="content"))
        for item in body.items
    ]
    answer = services.reader.filter_batch(
        body.purpose,
        pairs,
        party=body.party or PLATFORM,
        at=instant(body.at, field="at"),
        known_at=instant(body.known_at, field="known_at"),
        min_position=body.min_position,
        model=body.model,
    )
    return orjson.dumps(
        {
            "allowed": [{"subject": s, "content": c} for s, c in answer.allowed],
            "position": answer.position,
        }
    )


def prefers_html(accept: str) -> bool:
    """Tell whether an Accept header ranks text/html above application/json."""
    html = json = 0.0
    for media_range in accept.split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == HTML:
            html = max(html, quality)
        elif media in ("application/json", "application/*"):
            json = max(json, quality)
    return html > json
