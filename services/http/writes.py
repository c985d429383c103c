"""The write path every write route shares: idempotency, validation, group commit, answer.

A route hands over a callable that makes its command (`ledger.commands`: making one
checks the input, with no I/O). The gateway honours the `Idempotency-Key` header (see
`services.http.idempotency`), makes the command, queues it on the committer (which hands
it to the ledger's write pipeline), waits for its receipt and answers 201 with
`{event_id, position, recorded_at}`. A refusal is a LedgerError, answered by the one
error map; with a key, it is stored and replayed like an answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Final

import orjson
import structlog
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ledger.application import Receipt
from ledger.commands import Command
from ledger.errors import ConcurrentWriteError, ErrorKind, LedgerError
from services.http.group_commit import Committer
from services.http.idempotency import (
    IDEMPOTENCY_HEADER,
    WAIT_SECONDS,
    IdempotencyInProgressError,
    IdempotencyStore,
    Pending,
    Reservation,
    StoredAnswer,
    body_digest,
    check_key,
    slot_for,
)
from services.http.problems import PROBLEM_JSON, STATUS_BY_KIND, problem_body
from services.http.routing import JsonResponse

REPLAYED_HEADER: Final = "Idempotent-Replayed"
_log = structlog.get_logger("consent_ledger.api.writes")


class WriteGateway:
    """Execute writes for the routes: idempotency, then the committer."""

    def __init__(self, committer: Committer, idempotency: IdempotencyStore) -> None:
        self.committer = committer
        self.idempotency = idempotency
        # Lease tokens of reservations this process gave up (their write answered 503)
        # but could not mark released, the store being gone: a retry reaching this
        # process takes them over at once instead of waiting out the lease.
        self._given_up: set[str] = set()

    async def write(self, request: Request, make: Callable[[], Command]) -> Response:
        """Answer one write request: 201 with its receipt, or the problem that refused it.

        `make` builds the command (pure: it runs on the event loop); a LedgerError it
        raises is the request's answer, like a refusal by the ledger.
        """
        # The subject id is logged only with a write that succeeded (so the subject was
        # not erased then) and never with the erasure itself: a refused write after an
        # erasure names no erased subject in the logs.
        subject = request.path_params.get("subject")
        if request.url.path.endswith("/erasure"):
            subject = None
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            receipt = await self._append(make, None, subject)
            return self._created(receipt)
        route = request.scope.get("route")
        slot = slot_for(
            request.method,
            getattr(route, "path", request.url.path),
            request.path_params,
            check_key(key),
        )
        digest = body_digest(await request.body())
        claim = await self._claim(slot, digest)
        if isinstance(claim, StoredAnswer):
            return _replay(claim)
        return await self._execute_reserved(make, claim, subject)

    async def _claim(self, slot: str, digest: str) -> Reservation | StoredAnswer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            claim = await run_in_threadpool(self.idempotency.claim, slot, digest)
            if not isinstance(claim, Pending):
                return claim
            given_up = claim.token in self._given_up
            if given_up or claim.stale(self.idempotency.clock(), self.idempotency.lease_seconds):
                taken = await run_in_threadpool(self.idempotency.take_over, slot, claim)
                self._given_up.discard(claim.token)  # taken, or changed by another request
                if taken is not None:
                    return taken
                continue
            if loop.time() > deadline:
                raise IdempotencyInProgressError(
                    f"a request with this {IDEMPOTENCY_HEADER} is still being processed; "
                    "retry shortly"
                )
            await asyncio.sleep(0.02)

    async def _execute_reserved(
        self,
        make: Callable[[], Command],
        reservation: Reservation,
        subject: str | None,
    ) -> Response:
        try:
            receipt = await self._append(make, reservation, subject)
        except LedgerError as error:
            if not _is_final(error):
                # The outcome is unknown (the commit may have landed as the store went
                # away): released, the reservation keeps its event id for the retry.
                if not await _quietly(self.idempotency.release, reservation):
                    self._given_up.add(reservation.token)
                raise
            status = STATUS_BY_KIND[error.kind]
            body = orjson.dumps(problem_body(status, error.title, error.detail))
            await _quietly(self.idempotency.complete, reservation, status, body)
            return Response(body, status_code=status, media_type=PROBLEM_JSON)
        # Any other failure (a bug, a cancelled request) leaves the reservation pending;
        # after the lease a retry takes it over with the same event id, so it is answered
        # with the event if that was appended, and appends it if not.
        body = orjson.dumps(receipt.to_json())
        # If storing the answer fails, the same holds: the retry gets this receipt again.
        await _quietly(self.idempotency.complete, reservation, 201, body)
        return Response(body, status_code=201, media_type="application/json")

    async def _append(
        self,
        make: Callable[[], Command],
        reservation: Reservation | None,
        subject: str | None,
    ) -> Receipt:
        command = make()
        if reservation is not None:  # every try of a key appends the same event
            command = dataclasses.replace(command, event_id=reservation.event_id)
        receipt = await self.committer.append(command)
        structlog.contextvars.bind_contextvars(
            event_id=str(receipt.event_id), position=receipt.position
        )
        if subject is not None:
            structlog.contextvars.bind_contextvars(subject=subject)
        _log.info("event_appended")
        return receipt

    def _created(self, receipt: Receipt) -> Response:
        return JsonResponse(receipt.to_json(), status_code=201)


def _is_final(error: LedgerError) -> bool:
    """Tell whether a refusal is the request's answer (stored) or worth a retry (not)."""
    return error.kind is not ErrorKind.UNAVAILABLE and not isinstance(error, ConcurrentWriteError)


def _replay(answer: StoredAnswer) -> Response:
    media_type = "application/json" if answer.status < 400 else PROBLEM_JSON
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=media_type,
        headers={REPLAYED_HEADER: "true"},
    )


async def _quietly(action: Callable[..., None], *args: object) -> bool:
    """Run a bookkeeping step whose failure must not change the answer; tell if it ran."""
    try:
        await run_in_threadpool(action, *args)
    except (LedgerError, OSError) as error:
        _log.warning("idempotency_bookkeeping_failed", step=action.__name__, error=str(error))
        return False
    return True
