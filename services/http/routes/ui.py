"""The legal team's web pages: a sign-in form and a subject's timeline, as HTML shells.

The pages hold no data, so they need no key: they are the static HTML, CSS and JS of
the `services.http.web` package. Their script asks the /v1 routes for everything, with the
API key the user pasted (kept in the tab's sessionStorage and sent as a Bearer header,
never in a URL or a cookie), so each role's access is enforced where it always is.

A strict Content-Security-Policy admits only this origin's own script, style and
fetches: no inline script runs, and the script inserts ledger data as text, never as
markup, so a hostile reason or evidence field cannot become code.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

UI_PREFIX: Final = "/ui"
WEB_PACKAGE: Final = "services.http.web"
SIGN_IN_PAGE: Final = "sign-in.html"
TIMELINE_PAGE: Final = "timeline.html"
ASSETS: Final = {
    "ledger.css": "text/css; charset=utf-8",
    "ledger.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
}
"""The files served under /ui/static/, with their media types; nothing else is."""

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def ui_router() -> APIRouter:
    """Return the page routes; reads the pages from the `services.http.web` package once."""
    web = files(WEB_PACKAGE)
    pages = {name: web.joinpath(name).read_bytes() for name in (SIGN_IN_PAGE, TIMELINE_PAGE)}
    assets = {name: web.joinpath(name).read_bytes() for name in ASSETS}
    router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

    def page(name: str) -> Response:
        return Response(pages[name], media_type="text/html", headers=SECURITY_HEADERS)

    @router.get("")
    async def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/")

    @router.get("/")
    async def sign_in() -> Response:
        return page(SIGN_IN_PAGE)

    @router.get("/subjects/{subject}")
    async def timeline(subject: str) -> Response:
        return page(TIMELINE_PAGE)  # the script reads the subject from the path

    @router.get("/static/{name}")
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no such web asset: {name!r}")
        return Response(assets[name], media_type=ASSETS[name], headers=SECURITY_HEADERS)

    return router
