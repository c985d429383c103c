"""The in-memory index of current checks never answers behind the ledger head.

`PermissionReader.check` answers "as known now" from the projector's `CurrentIndex`
only when the index holds at least the ledger head as the read began (or the caller's
`min_position`); otherwise the tables answer, as before. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from ledger.vocabulary import Basis
from projections.current_index import CurrentIndex
from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import ManualClock, clocked_services


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    yield from clocked_services(settings)


def indexed(services: Services) -> CurrentIndex:
    index = services.projector.index
    assert index is not None
    return index


def granted_then_revoked(services: Services, clock: ManualClock) -> UUID:
    """Grant, project the grant (tables and index), then revoke; return the revocation."""
    services.ledger.grant("ann", "ai-generative-training")
    services.projector.catch_up()
    services.projector.tail_index()
    clock.tick(1)
    return services.ledger.revoke("ann", "ai-generative-training").event_id


def test_a_write_the_index_has_not_folded_is_still_reflected_by_the_next_check(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    revocation = granted_then_revoked(services, clock)
    assert indexed(services).position < ledger.ledger_position()  # the index is behind
    decision = services.reader.check("ann", "ai-generative-training")
    assert decision.basis is Basis.EXPLICIT_REVOCATION
    assert decision.event_ids == (revocation,)
    assert decision.position == ledger.ledger_position()


def test_an_index_at_the_ledger_head_answers_while_the_tables_lag(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger, projector = services.ledger, services.projector
    ledger.grant("ann", "ai-generative-training")
    projector.catch_up()
    clock.tick(1)
    revocation = ledger.revoke("ann", "ai-generative-training")
    projector.tail_index()  # the index folds the log itself; the tables stay behind
    decision = services.reader.check("ann", "ai-generative-training")
    assert decision.event_ids == (revocation.event_id,)
    assert decision.position == ledger.ledger_position()
    assert projector.position() < ledger.ledger_position()  # no catch-up was needed


def test_a_check_with_min_position_uses_the_index_only_once_it_holds_that_position(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    revocation = granted_then_revoked(services, clock)
    wanted = services.ledger.ledger_position()
    decision = services.reader.check("ann", "ai-generative-training", min_position=wanted)
    assert decision.event_ids == (revocation,)
    assert decision.position >= wanted


def test_voiding_a_fact_brings_back_in_the_index_the_fact_it_had_replaced(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger, projector = services.ledger, services.projector
    grant = ledger.grant("ann", "ai-generative-training")
    clock.tick(1)
    revocation = ledger.revoke("ann", "ai-generative-training")
    clock.tick(1)
    ledger.void(revocation.event_id, "entered in error")
    projector.tail_index()
    index = indexed(services)
    question = ledger.question("ann", "ai-generative-training")
    decision = services.reader.index_answer(index, question)
    assert decision is not None
    assert decision.basis is Basis.EXPLICIT_GRANT
    assert decision.event_ids == (grant.event_id,)
    assert decision == ledger.check("ann", "ai-generative-training")
