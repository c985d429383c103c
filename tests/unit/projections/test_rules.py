"""The read side's rules, without a database.

`resolve` answers from per-key evidence (the latest candidate and the latest one not
expired, per specificity class); given evidence computed by brute force from a history,
it must answer exactly as `decide` does on the whole history. The tips may answer alone
only when nothing could hide them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.decisions import Key, Question, decide, known_state, question_keys, terms_in_force
from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from ledger.vocabulary import ASPECTS, Vocabulary
from projections.permissions import TermsVersion, read_current, resolve
from projections.timeline import (
    GRANT,
    REVOCATION,
    Acceptance,
    Evidence,
    Fact,
    from_micros,
    to_micros,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
STREAM = UUID(int=1)
VOCABULARY = Vocabulary()
PARTIES = ("platform", "*", "acme")
ASKED_PARTIES = (*PARTIES, "beta")
CONTENTS = ("c1", "c2")


def when(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def terms_version(version: str, effective_from: int, granted: bool) -> TermsPublished:
    default = "granted" if granted else "denied"
    return TermsPublished(
        originator_id=UUID(int=2),
        originator_version=1,
        timestamp=T0,
        event_id=uuid4(),
        effective_at=T0,
        version=version,
        effective_from=when(effective_from),
        clauses=[{"purpose": "ai-training", "default": default}],
        document_sha256=None,
    )


TERMS = {
    "v1": terms_version("v1", -5, granted=True),
    "v2": terms_version("v2", 10, granted=False),
}


@st.composite
def histories(draw: st.DrawFn) -> list[Entry]:
    """Draw one subject's history: recorded in order, effective whenever."""
    entries: list[Entry] = []
    for position in range(1, draw(st.integers(1, 14)) + 1):
        kind = draw(st.sampled_from(["grant", "grant", "revoke", "accept", "void", "erase"]))
        base: dict[str, Any] = {
            "originator_id": STREAM,
            "originator_version": position,
            "timestamp": when(position),
            "event_id": uuid4(),
            "effective_at": when(draw(st.integers(-10, 20))),
            "subject": "ann",
        }
        event: LedgerEvent
        if kind in ("grant", "revoke"):
            scope: dict[str, Any] = {
                "purpose": draw(st.sampled_from(["ai-training", "ai-generative-training"])),
                "party": draw(st.sampled_from(PARTIES)),
                "content_ids": draw(
                    st.none() | st.lists(st.sampled_from(CONTENTS), min_size=1, unique=True)
                ),
                "aspect": draw(st.sampled_from(["all", "all", "voice"])),
                "evidence": None,
            }
            if kind == "grant":
                life = draw(st.none() | st.integers(1, 10))
                expires = None if life is None else base["effective_at"] + timedelta(seconds=life)
                event = ConsentGranted(**base, **scope, expires_at=expires)
            else:
                event = ConsentRevoked(**base, **scope, reason=None)
        elif kind == "accept":
            event = TermsAccepted(
                **base, version=draw(st.sampled_from(sorted(TERMS))), evidence=None
            )
        elif kind == "void" and entries:
            target = draw(st.sampled_from(entries)).event
            event = EventVoided(**base, voided_event_id=target.event_id, reason="x")
        elif kind == "erase" and draw(st.integers(0, 3)) == 0:
            event = SubjectErased(**base, reason=None)
        else:
            continue
        entries.append(Entry(position, event))
    return entries


def brute_evidence(history: list[Entry], question: Question, position: int) -> Evidence:
    """Compute the evidence the SQL lookups return, the slow way."""
    state = known_state(history, question.known_at)
    classes = []
    for key in question_keys(question.party, question.content, question.aspect):
        rows = [
            e
            for e in state.live
            if isinstance(e.event, ConsentGranted | ConsentRevoked)
            and e.event.purpose == question.purpose.name
            and e.event.party == key.party
            and e.event.aspect == key.aspect
            and (e.event.model or "") == key.model
            and e.event.effective_at <= question.at
            and (
                key.scope in (e.event.content_ids or [])
                if key.scope
                else e.event.content_ids is None
            )
        ]
        applicable = [
            e
            for e in rows
            if not (
                isinstance(e.event, ConsentGranted)
                and e.event.expires_at is not None
                and e.event.expires_at <= question.at
            )
        ]
        classes.append((latest(rows), latest(applicable)))
    in_force = terms_in_force(state.live, TERMS, question.at)
    acceptance = None
    if in_force is not None:
        entry, published = in_force
        acceptance = Acceptance(
            entry.event.event_id.hex,
            published.version,
            to_micros(entry.event.effective_at),
            entry.position,
            to_micros(published.effective_from),
        )
    erasure = state.erasure.event.event_id.hex if state.erasure else None
    return Evidence(tuple(classes), acceptance, erasure, position)


def latest(rows: list[Entry]) -> Fact | None:
    if not rows:
        return None
    entry = max(rows, key=lambda e: (e.event.effective_at, e.position))
    event = entry.event
    assert isinstance(event, ConsentGranted | ConsentRevoked)
    expires = event.expires_at if isinstance(event, ConsentGranted) else None
    return Fact(
        GRANT if isinstance(event, ConsentGranted) else REVOCATION,
        event.event_id.hex,
        to_micros(event.effective_at),
        entry.position,
        None if expires is None else to_micros(expires),
    )


@settings(max_examples=400, deadline=None)
@given(
    history=histories(),
    purpose=st.sampled_from(["ai-training", "ai-generative-training"]),
    party=st.sampled_from(ASKED_PARTIES),
    content=st.sampled_from([None, *CONTENTS, "c9"]),
    aspect=st.sampled_from(ASPECTS),
    at=st.integers(-12, 32),
    known_at=st.integers(0, 16),
)
def test_resolving_per_key_evidence_answers_as_deciding_on_the_whole_history(
    history: list[Entry],
    purpose: str,
    party: str,
    content: str | None,
    aspect: str,
    at: int,
    known_at: int,
) -> None:
    question = Question(
        "ann", VOCABULARY.purpose(purpose), party, content, aspect, when(at), when(known_at)
    )
    position = max((e.position for e in history if e.position <= known_at), default=0)
    expected = decide(history, TERMS, question, position)
    versions = {
        v: TermsVersion(v, to_micros(t.effective_from), {"ai-training": t.clauses[0]["default"]})
        for v, t in TERMS.items()
    }
    assert resolve(question, brute_evidence(history, question, position), versions) == expected


def test_question_keys_come_most_specific_first() -> None:
    keys = question_keys("acme", "c1", "voice")
    assert keys == (
        Key("acme", "c1", "voice"),
        Key("acme", "c1", "all"),
        Key("acme", "", "voice"),
        Key("acme", "", "all"),
        Key("*", "c1", "voice"),
        Key("*", "c1", "all"),
        Key("*", "", "voice"),
        Key("*", "", "all"),
    )
    # The order of ledger.decisions.specificity: named party, then content, then aspect.
    ranks = [(k.party != "*", k.scope != "", k.aspect != "all") for k in keys]
    assert ranks == sorted(ranks, reverse=True)
    assert question_keys("platform", None, "all") == (Key("platform", "", "all"),)
    assert question_keys("*", "c1", "all") == (Key("*", "c1", "all"), Key("*", "", "all"))


@given(st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)))
def test_instants_survive_the_trip_through_microseconds(value: datetime) -> None:
    assert from_micros(to_micros(value)) == value


def question_at(at: int, known_at: int) -> Question:
    return Question(
        "ann", VOCABULARY.purpose("ai-training"), "platform", None, "all", when(at), when(known_at)
    )


def tip_row(
    effective_at: int, kind: int = GRANT, expires_at: int | None = None
) -> tuple[object, ...]:
    expires = None if expires_at is None else to_micros(when(expires_at))
    return (0, kind, "ab" * 16, to_micros(when(effective_at)), 7, expires, None, None)


def test_tips_answer_when_nothing_can_hide_them() -> None:
    rows = [
        tip_row(0),
        (102, None, None, None, 9, None, None, None),
        (103, *[None] * 4, 5, None, None),
    ]
    found = read_current(rows, question_at(10, 10), 1)
    assert found is not None
    assert found.classes[0][0] == found.classes[0][1]
    assert found.position == 9


def test_tips_do_not_answer_a_question_they_cannot_see_the_whole_of() -> None:
    head = (103, None, None, None, None, to_micros(when(10)), None, None)
    # A fact recorded after `known_at`: the timeline must say what was known then.
    assert read_current([tip_row(0), head], question_at(20, 5), 1) is None
    # The latest fact starts after `at`: an earlier one may have applied then.
    assert read_current([tip_row(15), head], question_at(12, 12), 1) is None
    # The latest fact is a grant expired at `at`: an earlier one may show through.
    assert read_current([tip_row(0, expires_at=5), head], question_at(12, 12), 1) is None
    # The latest acceptance names terms not yet in force at `at`.
    terms = (100, None, "cd" * 16, to_micros(when(0)), 3, to_micros(when(20)), "v2", None)
    assert read_current([terms, head], question_at(12, 12), 1) is None
    # A revocation effective by `at` answers, whatever came before it.
    assert read_current([tip_row(0, kind=REVOCATION), head], question_at(12, 12), 1)
