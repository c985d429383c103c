"""The read models follow BRIEF §2.1 exactly as the replay does, on both backends.

Random histories of works with contributors, model-scoped and conditional grants,
agents acting under authority, voids of registrations and erasures are written through
the real use cases with a controlled clock, projected in small batches, then asked every
question about their subjects, contents, aspects and models, now and at random instants:
both read paths, the in-memory index of current checks (where it answers, and through
`PermissionReader.check`) and the batch filter must answer as `ConsentLedger.check`
(the replay).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from projections.runner import Projector
from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import ManualClock, clocked_services

EXAMPLES = {"sqlite": 25, "postgres": 6}
SUBJECTS = ("ann", "bob", "cy")
PURPOSES = ("ai-training", "ai-generative-training")
PARTIES = ("platform", "*", "acme")
CONTENTS = (None, "c1", "c2")
ASPECTS = ("all", "voice", "music")
MODELS = (None, "m1")
_examples = itertools.count()

offsets = st.none() | st.integers(-4, 12)
subjects = st.sampled_from(SUBJECTS)
write = st.tuples(
    st.sampled_from(["grant", "grant", "revoke"]),
    subjects,
    st.sampled_from(PURPOSES),
    st.sampled_from(PARTIES),
    st.none() | st.sampled_from([["c1"], ["c2"], ["c1", "c2"]]),
    st.sampled_from(["all", "all", "voice", "music"]),
    st.sampled_from([None, None, "m1"]),
    st.sampled_from([None, None, ["credit"], ["credit", "no clone"]]),
    offsets,
    st.none() | st.integers(1, 10),
    st.sampled_from([None, None, "agent-1"]),
)
register = st.tuples(
    st.just("register"),
    st.sampled_from(["ann", "ann", "bob"]),
    st.sampled_from(["c1", "c1", "c2"]),
    st.lists(
        st.tuples(subjects, st.lists(st.sampled_from(["voice", "music"]), min_size=1, unique=True)),
        max_size=2,
        unique_by=lambda c: c[0],
    ),
    offsets,
)
operations = st.one_of(
    write,
    write,
    write,
    register,
    st.tuples(st.just("authority"), subjects, st.sampled_from([None, ["ai-training"]])),
    st.tuples(st.just("deauthorise"), subjects),
    st.tuples(st.just("void"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.sampled_from([1, 2, 5])),
    st.tuples(st.just("project"), st.integers(1, 4)),
    st.tuples(st.just("erase"), subjects, st.integers(0, 4)),
)


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    """Yield services on the parametrised backend whose ledger clock the test moves."""
    yield from clocked_services(settings)


def play(
    services: Services, clock: ManualClock, ops: list[tuple[Any, ...]], prefix: str
) -> datetime:
    """Write `ops` through the use cases (refused writes are skipped); return the start."""
    ledger = services.ledger
    start = clock.now()
    name = prefix.__add__

    def when(offset: int | None) -> datetime | None:
        return None if offset is None else start + timedelta(seconds=offset)

    ledger.publish_terms(f"{prefix}v1", start - timedelta(days=1), [
        {"purpose": "ai-training", "default": "granted"}
    ])  # fmt: skip
    for subject in SUBJECTS[:2]:
        ledger.accept_terms(name(subject), f"{prefix}v1")
    voidable: list[Any] = []
    for op in ops:
        clock.tick(0.25)
        kind = op[0]
        try:
            if kind in ("grant", "revoke"):
                _, subject, purpose, party, scope, aspect, model, conditions, at, life, actor = op
                words: dict[str, Any] = {
                    "party": party,
                    "content_ids": [name(c) for c in scope] if scope else None,
                    "aspect": aspect,
                    "effective_at": when(at),
                    "model": model,
                    "actor": actor,
                }
                if kind == "grant":
                    base = when(at) or clock.now()
                    expires = None if life is None else base + timedelta(seconds=life)
                    receipt = ledger.grant(
                        name(subject), purpose, expires_at=expires, conditions=conditions, **words
                    )
                else:
                    receipt = ledger.revoke(name(subject), purpose, **words)
                voidable.append(receipt.event_id)
            elif kind == "register":
                _, owner, content, contributors, at = op
                receipt = ledger.register_content(
                    name(content),
                    name(owner),
                    [{"subject": name(s), "aspects": a} for s, a in contributors],
                    effective_at=when(at),
                )
                voidable.append(receipt.event_id)
            elif kind == "authority":
                ledger.grant_authority(name(op[1]), "agent-1", op[2])
            elif kind == "deauthorise":
                ledger.revoke_authority(name(op[1]), "agent-1")
            elif kind == "void" and voidable:
                ledger.void(voidable[-1 - op[1] % len(voidable)], "entered in error")
            elif kind == "tick":
                clock.tick(op[1])
            elif kind == "project":
                Projector(ledger, services.projector.model, batch_size=op[1]).catch_up()
            elif kind == "erase" and op[2] == 0:
                ledger.erase(name(op[1]))
        except LedgerError:
            continue
    return start


def test_read_models_follow_the_rights_holder_rules_as_the_replay_does(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    dialect = "sqlite" if services.settings.database_url.startswith("sqlite") else "postgres"

    @settings(
        max_examples=EXAMPLES[dialect],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(ops=st.lists(operations, min_size=10, max_size=20), data=st.data())
    def example(ops: list[tuple[Any, ...]], data: st.DataObject) -> None:
        prefix = f"r{next(_examples)}-"
        start = play(services, clock, ops, prefix)
        services.projector.catch_up()
        index = services.projector.index
        assert index is not None
        services.projector.tail_index()  # batches of other projectors come from the log
        ledger = services.ledger
        reader = services.reader
        moments = [None, *(start + timedelta(seconds=s) for s in (-2, 0, 3, 8, 14))]
        grid = list(itertools.product(SUBJECTS, PURPOSES, PARTIES, CONTENTS, ASPECTS, MODELS))
        asked = [grid[i] for i in data.draw(st.lists(st.integers(0, len(grid) - 1), max_size=40))]
        for op in ops:
            if op[0] in ("grant", "revoke"):
                for content in op[4] or [None, "c1"]:
                    asked.append((op[1], op[2], op[3], content, op[5], op[6]))
            elif op[0] == "register":
                asked.extend(
                    (op[1], purpose, party, op[2], aspect, model)
                    for purpose, party, aspect, model in itertools.product(
                        PURPOSES, PARTIES, ASPECTS, MODELS
                    )
                )
        for subject, purpose, party, content, aspect, model in asked:
            at = data.draw(st.sampled_from(moments))
            known_at = data.draw(st.sampled_from(moments))
            words: dict[str, Any] = {
                "party": party,
                "content": prefix + content if content else None,
                "aspect": aspect,
                "at": at,
                "model": model,
            }
            replay = ledger.check(prefix + subject, purpose, known_at=known_at, **words)
            question = ledger.question(
                prefix + subject,
                purpose,
                party,
                words["content"],
                aspect,
                at,
                known_at,
                model=model,
            )
            given_known = known_at is not None
            assert reader.answer(question, known_at_given=given_known) == replay, words
            assert reader.answer(question, known_at_given=given_known, tips=False) == replay, words
            if not given_known:
                assert reader.index_answer(index, question) in (None, replay), words
                assert reader.check(prefix + subject, purpose, **words) == replay, words
        for purpose, party, model in itertools.product(PURPOSES, PARTIES, MODELS):
            pairs = [(prefix + s, prefix + c) for s in SUBJECTS for c in ("c1", "c2")]
            expected = [
                (s, c)
                for s, c in pairs
                if ledger.check(s, purpose, party=party, content=c, model=model).allowed
            ]
            answer = reader.filter_batch(purpose, pairs, party=party, model=model)
            assert answer.allowed == expected, (purpose, party, model)

    example()
