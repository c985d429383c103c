"""The expiry scheduler under store faults: a transient failure leaves the grant due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

import pytest

from ledger.application import ConsentLedger, Receipt
from ledger.errors import StoreUnavailableError
from ledger.events import ConsentExpired
from projections.expiry import ExpiryScheduler
from projections.runner import Projector
from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import ManualClock, clocked_services


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    """Yield services on the parametrised backend whose ledger clock the test moves."""
    yield from clocked_services(settings)


class UnavailableOnce:
    """The real ledger, except that its first `record_expiry` finds the store down."""

    def __init__(self, ledger: ConsentLedger) -> None:
        self.ledger = ledger
        self.failed = False

    def record_expiry(self, subject: str, grant_event_id: UUID) -> Receipt | None:
        if not self.failed:
            self.failed = True
            raise StoreUnavailableError("the ledger database is unavailable (injected)")
        return self.ledger.record_expiry(subject, grant_event_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_an_expiry_the_store_failed_to_record_is_recorded_on_the_next_run(
    clocked: tuple[Services, ManualClock],
) -> None:
    # Found by the worker leader-kill scenario: the scheduler used to mark a grant done
    # on any error, so a transient one left its expiry unrecorded until a restart.
    services, clock = clocked
    ledger = services.ledger
    expires = ledger.clock.now() + timedelta(minutes=5)
    grant = ledger.grant("ann", "ai-training", party="acme", expires_at=expires)
    Projector(ledger, services.projector.model).catch_up()
    flaky = UnavailableOnce(ledger)
    scheduler = ExpiryScheduler(cast(ConsentLedger, flaky), services.projector.model, clock)
    clock.tick(600)
    with pytest.raises(StoreUnavailableError):
        scheduler.run_due()
    assert scheduler.run_due() == 1
    expiries = [
        e.event for e in ledger.subject_entries("ann") if isinstance(e.event, ConsentExpired)
    ]
    assert [e.grant_event_id for e in expiries] == [grant.event_id]
