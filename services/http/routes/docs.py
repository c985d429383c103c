"""ReDoc at /redoc, offline: its script from the `fastapi-offline` package, never a CDN.

Swagger UI at /docs comes as `fastapi_offline.FastAPIOffline` serves it. ReDoc is served
here instead, so that its page carries a Content-Security-Policy admitting only this
origin: the bundled script would otherwise still fetch its "powered by" logo from the
vendor's CDN, a request that must not leave an offline deployment.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

REDOC_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' blob:",  # ReDoc's start-up script is inline
        "worker-src 'self' blob:",  # and it searches in a blob worker
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
    )
)


def redoc_router(*, path: str, openapi_url: str, assets_url: str, title: str) -> APIRouter:
    """Return the ReDoc page route at `path`, reading the schema from `openapi_url`."""
    router = APIRouter(include_in_schema=False)

    @router.get(path)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets_url}/redoc.standalone.js",
            redoc_favicon_url=f"{assets_url}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page

    return router
