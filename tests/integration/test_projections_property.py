"""The read models answer every question exactly as a replay through the pure rules does.

Random histories are written through the real use cases with a controlled clock (so
`recorded_at` and `known_at` matter), projected in random small batches, then asked
questions: every key (platform, `*` and named parties; content, unmentioned content and
catalogue; every aspect) now and at each instant where something changes, each fact at
its own instants and as known just before and at its recording, and random ones. Both
read paths (current tips, bitemporal timeline) must give the very same `Decision` as the
pure `decide` over the subject's replayed events, and so must the in-memory index of
current checks (`CurrentIndex`) wherever it answers, and the entrypoint `check` (which
reads the index) the same as `ConsentLedger.check`, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.decisions import Decision, Question, decide, keys_of
from projections.permissions import current_query, read_current
from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import (
    ASKED_CONTENTS,
    ASKED_PARTIES,
    PURPOSES,
    ManualClock,
    Played,
    clocked_services,
    histories,
    instants_for,
    play,
)

# Examples per backend: SQLite answers in microseconds, PostgreSQL over a socket.
EXAMPLES = {"sqlite": 100, "postgres": 25}
ASKED_ASPECTS = ("all", "voice", "music")
_examples = itertools.count()

Asking = tuple[str, str, str, str | None, str, datetime | None, datetime | None]


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    """Yield services on the parametrised backend whose ledger clock the test moves."""
    yield from clocked_services(settings)


def budget(services: Services, *, share: float = 1.0) -> settings:
    """Return hypothesis settings sized for the backend of `services`."""
    dialect = "sqlite" if services.settings.database_url.startswith("sqlite") else "postgres"
    return settings(
        max_examples=max(int(EXAMPLES[dialect] * share), 5),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def replayed(services: Services, played: Played) -> Callable[[Asking], Decision]:
    """Return the reference: `decide` over each subject's replayed events (as `check`)."""
    ledger = services.ledger
    entries = {s: ledger.subject_entries(s) for s in played.subjects}
    terms = ledger.terms_catalog()
    positions: dict[datetime | None, int] = {}

    def reference(asking: Asking) -> Decision:
        subject, purpose, party, content, aspect, at, known_at = asking
        question = ledger.question(subject, purpose, party, content, aspect, at, known_at)
        if known_at not in positions:
            positions[known_at] = ledger.ledger_position(known_at)
        return decide(entries[subject], terms, question, positions[known_at])

    return reference


def tips_answer(services: Services, question: Question) -> bool:
    """Tell whether the tables' current tips alone answer an "as known now" question."""
    view = services.projector.view
    statement, params = current_query(question, known_at_given=False)
    rows = view._query(view.sql(statement), params)
    return read_current(rows, question, len(keys_of(question))) is not None


def systematic(played: Played) -> list[Asking]:
    """Return every key now, the keys of each expiring grant's subject and purpose at its
    expiry, each fact around its own instants, and each voided fact as known around its
    void.
    """
    keys = list(
        itertools.product(played.subjects, PURPOSES, ASKED_PARTIES, ASKED_CONTENTS, ASKED_ASPECTS)
    )
    tick = timedelta(microseconds=1)
    asked: list[Asking] = [(*key, None, None) for key in keys]
    expiries = {
        (f.question[0], f.question[1], played.start + f.expires)
        for f in played.facts
        if f.expires is not None
    }
    for subject, purpose, expiry in sorted(expiries):
        asked.extend(
            (*key, expiry, None) for key in keys if key[0] == subject and key[1] == purpose
        )
    for fact in played.facts:
        recorded = played.start + fact.recorded
        for moment in fact.moments:
            at = played.start + moment
            asked.extend([(*fact.question, at - tick, None), (*fact.question, at, recorded - tick)])
        asked.extend([(*fact.question, None, recorded), (*fact.question, None, recorded - tick)])
    for target, voided in played.voids:
        known = played.start + voided
        for fact in played.facts:
            if fact.event_id == target:
                asked.extend([(*fact.question, None, known), (*fact.question, None, known - tick)])
    return asked


def drawn(played: Played) -> st.SearchStrategy[Asking]:
    """Draw any question at any instant (the grid above asks at change instants only)."""
    at_any, known_any = instants_for(played)
    return st.tuples(
        st.sampled_from(played.subjects),
        st.sampled_from(PURPOSES),
        st.sampled_from(ASKED_PARTIES),
        st.sampled_from(ASKED_CONTENTS),
        st.sampled_from(ASKED_ASPECTS),
        at_any,
        known_any,
    )


def test_read_models_answer_every_question_as_the_replay_does(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked

    @budget(services)
    @given(history=histories(), data=st.data())
    def example(history: list[tuple[object, ...]], data: st.DataObject) -> None:
        played = play(services, clock, history, prefix=f"x{next(_examples)}-")
        services.projector.catch_up()
        index = services.projector.index
        assert index is not None
        services.projector.tail_index()  # fed by the catch-ups' offers, then by the log
        reference = replayed(services, played)
        asked = systematic(played) + [data.draw(drawn(played)) for _ in range(20)]
        reader = services.reader
        for asking in asked:
            subject, purpose, party, content, aspect, at, known_at = asking
            expected = reference(asking)
            question = services.ledger.question(
                subject, purpose, party, content, aspect, at, known_at
            )
            given_known = known_at is not None
            assert reader.answer(question, known_at_given=given_known) == expected, asking
            assert reader.answer(question, known_at_given=given_known, tips=False) == expected, (
                asking
            )
            if not given_known:
                from_index = reader.index_answer(index, question)
                assert from_index in (None, expected), asking
                # ... and it answers exactly where the tables' current tips do.
                assert (from_index is not None) == tips_answer(services, question), asking
        for asking in asked[:: max(len(asked) // 8, 1)]:
            subject, purpose, party, content, aspect, at, known_at = asking
            words: dict[str, Any] = {"party": party, "content": content, "aspect": aspect, "at": at}
            replay = services.ledger.check(subject, purpose, known_at=known_at, **words)
            assert replay == reference(asking), asking
            assert reader.check(subject, purpose, known_at=known_at, **words) == replay

    example()


def test_batch_filter_allows_exactly_what_the_replay_allows(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked

    @budget(services, share=0.4)
    @given(history=histories(), data=st.data())
    def example(history: list[tuple[object, ...]], data: st.DataObject) -> None:
        played = play(services, clock, history, prefix=f"f{next(_examples)}-")
        services.projector.catch_up()
        reference = replayed(services, played)
        purpose = data.draw(st.sampled_from(PURPOSES))
        party = data.draw(st.sampled_from(ASKED_PARTIES))
        at_choices, known_choices = instants_for(played)
        at = data.draw(at_choices)
        known_at = data.draw(known_choices)
        contents = [c for c in ASKED_CONTENTS if c is not None]
        pairs = [(s, c) for s in played.subjects for c in contents]
        expected = [
            (s, c)
            for s, c in pairs
            if reference((s, purpose, party, c, "all", at, known_at)).allowed
        ]
        reader = services.reader
        answer = reader.filter_batch(purpose, pairs, party=party, at=at, known_at=known_at)
        assert answer.allowed == expected
        assert answer.position == services.ledger.ledger_position(known_at)
        streamed = list(reader.filter(purpose, pairs, party=party, at=at, known_at=known_at))
        assert streamed == expected

    example()
