"""The Merkle log as C2SP tlog-tiles under `/v1/ledger/tiles/` (see `projections.tiles`).

`GET /v1/ledger/tiles/checkpoint` answers the latest signed checkpoint note
(text/plain); `GET /v1/ledger/tiles/tile/<L>/<N>[.p/<W>]` a tile and
`GET /v1/ledger/tiles/tile/entries/<N>[.p/<W>]` an entry bundle
(application/octet-stream). Tiles never change, so they are cacheable for a year
(`immutable`); the checkpoint for a few seconds. Reader role, like the proofs.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from projections.tiles import LogTiles, parse_tile_path
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import LedgerRoute

IMMUTABLE: Final = "public, max-age=31536000, immutable"
CHECKPOINT_CACHE: Final = "public, max-age=5"
BINARY: Final = "application/octet-stream"


def tiles_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the tlog-tiles routes of the deployment's log."""
    router = APIRouter(
        prefix="/v1/ledger/tiles", tags=["transparency log"], route_class=LedgerRoute
    )
    read = [Depends(auth.requires(Access.READ))]
    errors = problem_responses(401, 403, 404, 422, 503)
    tiles = LogTiles(services.log)

    @router.get(
        "/checkpoint",
        dependencies=read,
        responses=errors,
        response_class=Response,
        summary="The latest checkpoint as a C2SP signed note (tlog-checkpoint)",
    )
    def checkpoint() -> Response:
        note = str(services.transparency.checkpoint()["note"])
        return Response(
            note,
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": CHECKPOINT_CACHE},
        )

    @router.get(
        "/tile/entries/{rest:path}",
        dependencies=read,
        responses=errors,
        response_class=Response,
        summary="An entry bundle: each leaf's record, prefixed by its uint16 length",
    )
    def entries(rest: str) -> Response:
        body = tiles.entries(parse_tile_path(0, rest))
        return Response(body, media_type=BINARY, headers={"Cache-Control": IMMUTABLE})

    @router.get(
        "/tile/{level}/{rest:path}",
        dependencies=read,
        responses=errors,
        response_class=Response,
        summary="A tile: up to 256 hashes of tree level 8·L, 32 bytes each",
    )
    def tile(level: int, rest: str) -> Response:
        body = tiles.tile(parse_tile_path(level, rest))
        return Response(body, media_type=BINARY, headers={"Cache-Control": IMMUTABLE})

    return router
