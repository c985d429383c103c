"""The expiry scheduler: record `ConsentExpired` when a grant's expiry passes.

Decisions never need the event (a grant stops applying at its `expires_at` by the rules
alone); it is recorded so that subscribers hear of the change. Due grants come from the
read model's `perm_expiries` table, which the projection fills with each expiring grant
and empties as their `ConsentExpired`, void or erasure arrives. `record_expiry` itself
refuses to record twice, so running the scheduler again is harmless.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

import structlog

from ledger.application import Clock, ConsentLedger
from ledger.errors import ErrorKind, LedgerError
from projections.runner import ViewSource
from projections.timeline import to_micros

DEFAULT_LIMIT: Final = 500

_log = structlog.get_logger("projections.expiry")


class ExpiryScheduler:
    """Append `ConsentExpired` for every grant whose expiry is due by the ledger clock."""

    def __init__(
        self, ledger: ConsentLedger, model: ViewSource, clock: Clock, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        self.ledger = ledger
        self.model = model
        self.clock = clock
        self.limit = limit
        self._done: set[str] = set()  # recorded by this scheduler, not yet projected

    def run_due(self) -> int:
        """Record the expiries due now (at most `limit` per call); return how many it appended.

        Requires the read model to be caught up for a grant to be seen; a grant the read
        model still lists after its expiry was recorded is skipped, and so is one the
        ledger refused. Raises StoreUnavailableError (the grant stays due) when the store
        cannot be reached.
        """
        due = self.model.view.due_expiries(to_micros(self.clock.now()), self.limit)
        listed = {grant for _, grant in due}
        self._done &= listed
        appended = 0
        for subject, grant in due:
            if grant in self._done:
                continue
            try:
                receipt = self.ledger.record_expiry(subject, UUID(hex=grant))
            except LedgerError as error:
                if error.kind is ErrorKind.UNAVAILABLE:
                    raise  # transient: the caller backs off and the grant is tried again
                _log.warning("expiry_not_recorded", grant_event_id=grant, error=error.detail)
                self._done.add(grant)
                continue
            self._done.add(grant)
            if receipt is not None:
                appended += 1
                _log.info(
                    "consent_expired",
                    grant_event_id=grant,
                    event_id=str(receipt.event_id),
                    position=receipt.position,
                )
        return appended
