"""Transparency-log routes: the signed checkpoint and RFC 9162 proofs (BRIEF §4, §5).

They call the deployment's transparency log, `services.transparency`, an object with the
`TransparencyLog` interface below. Until one is wired they answer 503 problem+json
"Transparency log not available", so clients can tell "not deployed" from "broken".
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Protocol

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ledger.errors import StoreUnavailableError
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute

MAX_TREE_SIZE: Final = 2**53 - 1  # the largest integer JCS (I-JSON) carries


class TransparencyLog(Protocol):
    """What the routes need of the Merkle log. Each method returns a JSON object.

    Errors are LedgerErrors (answered by the one error map): NotFoundError for a position
    or size the log does not hold yet, InvalidInputError for an impossible range.
    """

    def checkpoint(self) -> dict[str, Any]:
        """Return the latest signed checkpoint, as `checkpoint.json` of BRIEF §5."""
        ...

    def inclusion_proof(self, position: int, tree_size: int | None) -> dict[str, Any]:
        """Return `{"leaf_index", "tree_size", "audit_path": [hex…]}` for the event at a
        ledger position, against `tree_size` (None: the latest checkpoint's size)."""
        ...

    def consistency_proof(self, first: int, second: int | None) -> dict[str, Any]:
        """Return `{"first", "second", "proof": [hex…]}` between two tree sizes
        (`second` None: the latest checkpoint's size)."""
        ...


class TransparencyUnavailableError(StoreUnavailableError):
    """Signal that this deployment serves no transparency log (yet)."""

    title = "Transparency log not available"


def transparency_of(services: Services) -> TransparencyLog:
    """Return the deployment's transparency log, or raise TransparencyUnavailableError."""
    log: TransparencyLog | None = getattr(services, "transparency", None)
    if log is None:
        raise TransparencyUnavailableError(
            "this deployment serves no transparency log; checkpoints and proofs are unavailable"
        )
    return log


def ledger_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the checkpoint and proof routes."""
    router = APIRouter(prefix="/v1/ledger", tags=["transparency log"], route_class=LedgerRoute)
    read = [Depends(auth.requires(Access.READ))]
    errors = problem_responses(401, 403, 404, 422, 503)

    @router.get(
        "/checkpoint",
        dependencies=read,
        responses=errors,
        response_model=dict[str, Any],
        summary="The latest signed checkpoint (tree head) of the ledger's Merkle log",
    )
    def checkpoint() -> Response:
        return JsonResponse(transparency_of(services).checkpoint())

    @router.get(
        "/proofs/inclusion",
        dependencies=read,
        responses=errors,
        response_model=dict[str, Any],
        summary="RFC 9162 inclusion proof of the event at a ledger position",
    )
    def inclusion_proof(
        position: Annotated[int, Query(ge=1, le=MAX_TREE_SIZE)],
        tree_size: Annotated[int | None, Query(ge=0, le=MAX_TREE_SIZE)] = None,
    ) -> Response:
        return JsonResponse(transparency_of(services).inclusion_proof(position, tree_size))

    @router.get(
        "/proofs/consistency",
        dependencies=read,
        responses=errors,
        response_model=dict[str, Any],
        summary="RFC 9162 consistency proof between two tree sizes",
    )
    def consistency_proof(
        first: Annotated[int, Query(ge=0, le=MAX_TREE_SIZE)],
        second: Annotated[int | None, Query(ge=0, le=MAX_TREE_SIZE)] = None,
    ) -> Response:
        return JsonResponse(transparency_of(services).consistency_proof(first, second))

    return router
