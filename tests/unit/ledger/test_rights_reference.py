"""`decide` agrees with a slow reference of BRIEF §2 and §2.1 on random ledgers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from tests.unit.ledger.reference_rules import Ask, reference_decide
from tests.unit.ledger.rights_histories import as_answer, build, cases


@settings(max_examples=500, deadline=None)
@given(cases())
def test_decide_agrees_with_the_reference_on_random_rights_histories(
    case: tuple[list[tuple[Any, ...]], Ask],
) -> None:
    steps, ask = case
    ledger = build(steps)
    want = reference_decide(ledger.entries, ledger.terms, ask, ledger.position(ask.known_at))
    assert as_answer(ledger.decide(ask)) == want
