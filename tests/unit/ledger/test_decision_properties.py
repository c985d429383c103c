"""Properties of the pure decision rules on random histories (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events import EventVoided, SubjectErased
from ledger.vocabulary import Basis
from tests.unit.ledger.histories import History, at

PURPOSES = ["ai-training", "ai-generative-training", "data-mining"]
PARTIES = ["platform", "*", "aurora-labs", "crawlbot"]
CONTENTS = [None, ["t1"], ["t2"], ["t1", "t2"]]
ASPECTS = ["all", "voice", "music"]
BASE = at("2024-01-01")
DAYS = st.integers(min_value=0, max_value=730)


def day(n: int) -> datetime:
    return BASE + timedelta(days=n)


step = st.one_of(
    st.tuples(st.just("accept"), st.sampled_from(["v1", "v2"]), DAYS),
    st.tuples(
        st.just("grant"),
        st.sampled_from(PURPOSES),
        st.sampled_from(PARTIES),
        st.sampled_from(CONTENTS),
        st.sampled_from(ASPECTS),
        DAYS,
        st.none() | st.integers(min_value=1, max_value=400),
    ),
    st.tuples(
        st.just("revoke"),
        st.sampled_from(PURPOSES),
        st.sampled_from(PARTIES),
        st.sampled_from(CONTENTS),
        st.sampled_from(ASPECTS),
        DAYS,
    ),
    st.tuples(st.just("void"), st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("erase")),
)

question = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(PURPOSES),
        "party": st.sampled_from(PARTIES),
        "content": st.sampled_from([None, "t1", "t2", "t3"]),
        "aspect": st.sampled_from(ASPECTS),
        "when": DAYS.map(day),
    }
)


def build(steps: list[tuple[Any, ...]]) -> History:
    """Replay generated steps into a history; voids pick an earlier voidable event."""
    h = History()
    h.publish("v1", "2024-01-01", ai_training="granted", data_mining="denied")
    h.publish("v2", "2024-09-01", ai_training="denied", data_mining="granted")
    voidable: list[Any] = []
    voided: set[Any] = set()
    for s in steps:
        kind = s[0]
        if kind == "accept":
            voidable.append(h.accept(s[1], day(s[2])))
        elif kind == "grant":
            _, purpose, party, content, aspect, start, length = s
            expires = (day(start) + timedelta(days=length)).isoformat() if length else None
            voidable.append(
                h.grant(
                    purpose,
                    party=party,
                    content=content,
                    aspect=aspect,
                    effective=day(start),
                    expires=expires,
                )
            )
        elif kind == "revoke":
            _, purpose, party, content, aspect, start = s
            voidable.append(
                h.revoke(purpose, party=party, content=content, aspect=aspect, effective=day(start))
            )
        elif kind == "void":
            candidates = [v for v in voidable if v not in voided]
            if candidates:
                target = candidates[s[1] % len(candidates)]
                voided.add(target)
                h.void(target)
        elif kind == "erase" and not any(isinstance(e.event, SubjectErased) for e in h.entries):
            h.erase()
    return h


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=14), question)
def test_decision_at_equals_decision_on_the_events_effective_by_then(
    steps: list[tuple[Any, ...]], q: dict[str, Any]
) -> None:
    h = build(steps)
    full = h.ask(**q)
    h.entries = [
        e
        for e in h.entries
        if e.event.effective_at <= q["when"] or isinstance(e.event, EventVoided | SubjectErased)
    ]
    assert h.ask(**q) == full


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=14), question)
def test_later_revocation_of_the_asked_scope_always_denies(
    steps: list[tuple[Any, ...]], q: dict[str, Any]
) -> None:
    h = build(steps)
    latest = max([e.event.effective_at for e in h.entries] + [q["when"]])
    content = [q["content"]] if q["content"] else None
    revocation = h.revoke(
        q["purpose"],
        party=q["party"],
        content=content,
        aspect=q["aspect"],
        effective=latest,
    )
    decision = h.ask(**{**q, "when": latest})
    assert not decision.allowed
    assert decision.basis in (Basis.EXPLICIT_REVOCATION, Basis.ERASED)
    if decision.basis is Basis.EXPLICIT_REVOCATION:
        assert decision.event_ids == (revocation,)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=14), question)
def test_known_at_before_an_event_was_recorded_ignores_it(
    steps: list[tuple[Any, ...]], q: dict[str, Any]
) -> None:
    h = build(steps)
    if not h.entries:
        return
    last = h.entries[-1]
    just_before = last.event.recorded_at - timedelta(microseconds=1)
    with_it = h.ask(**q, known_at=just_before)
    h.entries = h.entries[:-1]
    assert h.ask(**q, known_at=just_before) == with_it


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=14), question)
def test_terms_never_allow_an_opt_in_purpose_or_a_third_party(
    steps: list[tuple[Any, ...]], q: dict[str, Any]
) -> None:
    decision = build(steps).ask(**q)
    if q["party"] != "platform" or q["purpose"] == "ai-generative-training":
        assert decision.basis not in (Basis.TERMS_DEFAULT, Basis.NO_TERMS_ACCEPTED)
    if decision.allowed:
        assert decision.basis in (Basis.EXPLICIT_GRANT, Basis.TERMS_DEFAULT)
