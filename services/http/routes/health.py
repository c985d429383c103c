"""Probes: `/healthz` (the process answers) and `/readyz` (the store answers). No key needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from services.bootstrap import Services
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import Health, Readiness
from services.http.store_watch import StoreWatch


def projection_lag(services: Services) -> int | None:
    """Return how far the projections run by this process trail the ledger, if any run."""
    projector = getattr(services, "projector", None)
    lag = getattr(projector, "lag", None)
    return int(lag()) if callable(lag) else None


def health_router(services: Services, watch: StoreWatch) -> APIRouter:
    """Return the liveness and readiness probes."""
    router = APIRouter(tags=["probes"], route_class=LedgerRoute)

    @router.get("/healthz", response_model=Health, summary="The process answers")
    async def healthz() -> Response:
        return JsonResponse({"status": "ok"})

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses=problem_responses(503),
        summary="The store answers; with the projections' lag behind the ledger",
    )
    def readyz() -> Response:
        watch.probe()  # fast, on its own connection: the pools may be slow to give up
        position = services.ledger.ledger_position()
        return JsonResponse(
            {"status": "ready", "position": position, "projection_lag": projection_lag(services)}
        )

    return router
