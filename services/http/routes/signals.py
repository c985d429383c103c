"""AI-signals routes: site-wide files (robots.txt, tdmrep.json, rsl.xml) and bulk lookup.

Thin: each route calls one use case of `services.signals` (projections.signals.service).
The files carry a strong `ETag` (SHA-256 of their bytes) and `Last-Modified` (when those
bytes were first generated), and answer 304 to a matching `If-None-Match` or a later
`If-Modified-Since`, so a web front can cache and re-publish them.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from projections.signals.service import MAX_LOOKUP_URLS, AiSignalService, SiteFile
from projections.signals.sitewide import MEDIA_TYPES, ROBOTS, RSL, TDMREP
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute

CACHE_CONTROL: Final = "no-cache"  # caches keep the file but revalidate with the ETag


class LookupRequest(BaseModel):
    """A bulk lookup: the URLs of pages (at most 10,000), as the URL template names them."""

    urls: list[str] = Field(description=f"Page URLs, at most {MAX_LOOKUP_URLS}.")
    min_position: int | None = Field(
        default=None, ge=0, description="Reflect at least this ledger position."
    )


def signals_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the site-wide AI-signals files and the bulk lookup, wired to one deployment."""
    router = APIRouter(prefix="/v1/ai-signals", tags=["reads"], route_class=LedgerRoute)
    read = [Depends(auth.requires(Access.READ))]

    def configured() -> AiSignalService:
        settings = services.settings
        return services.signals.configure(settings.tdm_policy_url, settings.content_url_template)

    def serve_file(name: str) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            return file_response(configured().site_files().files[name], request)

        return serve

    def file_responses(name: str) -> dict[int | str, dict[str, Any]]:
        media = MEDIA_TYPES[name].split(";")[0]
        return {
            200: {
                "description": "The file; ETag and Last-Modified set",
                "content": {media: {"schema": {"type": "string"}}},
            },
            304: {"description": "Not modified since the ETag or date the client holds"},
            **problem_responses(401, 403, 404, 503),
        }

    summaries = {
        ROBOTS: "robots.txt rules: AIPREF Content-Usage, Content-Signal, RSL License",
        TDMREP: "TDMRep /.well-known/tdmrep.json entries for every catalogue and exception",
        RSL: "RSL 1.0 document: permits/prohibits per catalogue and exception",
    }
    for name, summary in summaries.items():
        router.add_api_route(
            f"/{name}",
            serve_file(name),
            methods=["GET"],
            dependencies=read,
            responses=file_responses(name),
            response_class=Response,
            summary=summary,
            name=f"ai_signals_{name.replace('.', '_')}",
        )

    @router.post(
        "/lookup",
        dependencies=read,
        responses=problem_responses(401, 403, 404, 413, 422, 503),
        summary="Decisions and every vocabulary's value for up to 10,000 page URLs",
    )
    async def lookup(body: LookupRequest) -> Response:
        answer = await run_in_threadpool(
            configured().lookup, body.urls, min_position=body.min_position
        )
        return JsonResponse(answer)

    return router


def file_response(file: SiteFile, request: Request) -> Response:
    """Answer a site-wide file, or 304 when the client's copy is current."""
    headers = {
        "ETag": file.etag,
        "Last-Modified": format_datetime(file.last_modified.replace(microsecond=0), usegmt=True),
        "Cache-Control": CACHE_CONTROL,
    }
    match = request.headers.get("if-none-match")
    if match is not None:
        if file.etag in {tag.strip() for tag in match.split(",")} or match.strip() == "*":
            return Response(status_code=304, headers=headers)
    elif (since := request.headers.get("if-modified-since")) is not None:
        try:
            if file.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since):
                return Response(status_code=304, headers=headers)
        except (TypeError, ValueError):
            pass  # RFC 9110 §13.1.3: an invalid date is ignored
    return FileResponse(file.path, media_type=MEDIA_TYPES[file.name], headers=headers)
