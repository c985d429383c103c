# long module: the history builder and the property it serves belong together
"""Effective-permission changes are exactly the flips of the decision function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.decisions import Question, decide
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)
from ledger.vocabulary import Basis, ConsentModel, Vocabulary
from projections.permission_changes import (
    PermissionChangeDeriver,
    PermissionKey,
    SubjectStep,
    derive_step,
    parse_scope,
    scope_text,
)

SUBJECT = "artist-1"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
VOCABULARY = Vocabulary()
TERMS_GOVERNED = sorted(
    p.name for p in VOCABULARY.purposes.values() if p.model is ConsentModel.TERMS_GOVERNED
)


def _terms(version: str, **defaults: str) -> TermsPublished:
    return TermsPublished(
        originator_id=terms_stream_id(version),
        originator_version=1,
        timestamp=T0 - timedelta(days=30),
        event_id=uuid4(),
        effective_at=T0 - timedelta(days=30),
        version=version,
        effective_from=T0 - timedelta(days=30),
        clauses=[{"purpose": p.replace("_", "-"), "default": d} for p, d in defaults.items()],
        document_sha256=None,
    )


TERMS = {
    "v1": _terms("v1", ai_training="granted", personalization="denied"),
    "v2": _terms("v2", ai_training="denied", personalization="granted", data_mining="granted"),
}


class History:
    """Build one subject's entries with explicit ledger times, as the ledger would."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.now = T0

    def add(self, cls: type[Any], *, minutes: int = 1, **fields: Any) -> Entry:
        self.now += timedelta(minutes=minutes)
        fields.setdefault("effective_at", self.now)
        event = cls(
            originator_id=subject_stream_id(SUBJECT),
            originator_version=len(self.entries) + 1,
            timestamp=self.now,
            event_id=uuid4(),
            subject=SUBJECT,
            **fields,
        )
        entry = Entry(len(self.entries) * 2 + 10, event)  # positions with gaps
        self.entries.append(entry)
        return entry

    def accept(self, version: str, **kw: Any) -> Entry:
        return self.add(TermsAccepted, version=version, evidence=None, **kw)

    def grant(self, purpose: str, **kw: Any) -> Entry:
        kw.setdefault("party", "platform")
        kw.setdefault("content_ids", None)
        kw.setdefault("aspect", "all")
        kw.setdefault("expires_at", None)
        return self.add(ConsentGranted, purpose=purpose, evidence=None, **kw)

    def revoke(self, purpose: str, **kw: Any) -> Entry:
        kw.setdefault("party", "platform")
        kw.setdefault("content_ids", None)
        kw.setdefault("aspect", "all")
        return self.add(ConsentRevoked, purpose=purpose, reason=None, evidence=None, **kw)

    def expire(self, grant: Entry, **kw: Any) -> Entry:
        event = grant.event
        assert isinstance(event, ConsentGranted)
        assert event.expires_at is not None
        return self.add(
            ConsentExpired,
            grant_event_id=event.event_id,
            purpose=event.purpose,
            party=event.party,
            content_ids=event.content_ids,
            aspect=event.aspect,
            **kw,
        )

    def void(self, target: Entry, **kw: Any) -> Entry:
        return self.add(EventVoided, voided_event_id=target.event.event_id, reason="error", **kw)

    def erase(self, **kw: Any) -> Entry:
        return self.add(SubjectErased, reason=None, **kw)

    def steps(self) -> list[SubjectStep]:
        deriver = PermissionChangeDeriver(VOCABULARY)
        return [deriver.step(self.entries, i, TERMS) for i in range(len(self.entries))]

    def last_step(self) -> SubjectStep:
        return derive_step(self.entries, len(self.entries) - 1, TERMS, VOCABULARY)


def _changes(step: SubjectStep) -> list[tuple[str, str, str, bool, str]]:
    return [
        (c.key.purpose, c.key.party, c.key.scope, c.allowed, c.basis.value) for c in step.changes
    ]


def test_revocation_of_a_granted_purpose_emits_one_change_to_denied() -> None:
    h = History()
    h.grant("ai-generative-training", party="acme")
    h.revoke("ai-generative-training", party="acme")

    assert _changes(h.last_step()) == [
        ("ai-generative-training", "acme", "catalogue", False, "explicit-revocation")
    ]


def test_revocation_that_changes_nothing_emits_no_change_but_publishes_its_new_state() -> None:
    h = History()
    h.revoke("ai-generative-training")

    step = h.last_step()

    assert step.changes == ()
    assert [(s.key.scope, s.allowed, s.basis) for s in step.states] == [
        ("catalogue", False, Basis.EXPLICIT_REVOCATION)
    ]


def test_terms_acceptance_emits_a_change_for_each_default_it_grants_and_no_other() -> None:
    h = History()
    h.accept("v2")

    step = h.last_step()

    assert _changes(step) == [
        ("data-mining", "platform", "catalogue", True, "terms-default"),
        ("personalization", "platform", "catalogue", True, "terms-default"),
    ]
    assert {s.key.purpose for s in step.states} == set(TERMS_GOVERNED)


def test_accepting_newer_terms_emits_the_defaults_that_flip_both_ways() -> None:
    h = History()
    h.accept("v1")
    h.accept("v2")

    assert _changes(h.last_step()) == [
        ("ai-training", "platform", "catalogue", False, "terms-default"),
        ("data-mining", "platform", "catalogue", True, "terms-default"),
        ("personalization", "platform", "catalogue", True, "terms-default"),
    ]


def test_recorded_expiry_emits_a_change_to_denied_with_basis_grant_expired() -> None:
    h = History()
    grant = h.grant("ai-generative-training", expires_at=h.now + timedelta(minutes=30))
    h.expire(grant, minutes=31, effective_at=h.now + timedelta(minutes=30))

    assert _changes(h.last_step()) == [
        ("ai-generative-training", "platform", "catalogue", False, "grant-expired")
    ]


def test_voiding_a_revocation_emits_the_change_back_to_the_terms_default() -> None:
    h = History()
    h.accept("v1")
    revocation = h.revoke("ai-training")
    h.void(revocation)

    assert _changes(h.last_step()) == [
        ("ai-training", "platform", "catalogue", True, "terms-default")
    ]


def test_content_revocation_under_a_granted_default_emits_for_that_content_only() -> None:
    h = History()
    h.accept("v1")
    h.revoke("ai-training", content_ids=["track-2", "track-1"])

    assert _changes(h.last_step()) == [
        ("ai-training", "platform", "content:track-1", False, "explicit-revocation"),
        ("ai-training", "platform", "content:track-2", False, "explicit-revocation"),
    ]


def test_erasure_denies_each_allowed_key_and_tombstones_every_key() -> None:
    h = History()
    h.accept("v1")
    h.grant("ai-generative-training", aspect="voice")
    h.revoke("data-mining", party="*")
    h.erase()

    step = h.last_step()

    assert _changes(step) == [
        ("ai-generative-training", "platform", "catalogue/voice", False, "erased"),
        ("ai-training", "platform", "catalogue", False, "erased"),
    ]
    assert step.states == ()
    assert {k.scope for k in step.erased} == {"catalogue", "catalogue/voice"}
    assert len(step.erased) == len(TERMS_GOVERNED) + 2


def test_terms_publication_belongs_to_no_subject_and_changes_nothing() -> None:
    entry = Entry(1, TERMS["v1"])

    step = derive_step([entry], 0, TERMS, VOCABULARY)

    assert (step.subject, step.changes, step.states, step.erased) == (None, (), (), ())


def test_change_that_time_brings_is_reported_with_the_subjects_next_event() -> None:
    h = History()
    h.grant("ai-generative-training", expires_at=h.now + timedelta(minutes=10))
    h.grant("personalization", minutes=20)  # the first grant expired in between

    assert _changes(h.last_step()) == [
        ("ai-generative-training", "platform", "catalogue", False, "grant-expired"),
        ("personalization", "platform", "catalogue", True, "explicit-grant"),
    ]


@pytest.mark.parametrize(
    ("content", "aspect", "text"),
    [
        (None, "all", "catalogue"),
        ("track-9", "all", "content:track-9"),
        (None, "voice", "catalogue/voice"),
        ("a:b", "likeness", "content:a:b/likeness"),
    ],
)
def test_scope_text_names_catalogue_or_content_and_splits_back(
    content: str | None, aspect: str, text: str
) -> None:
    assert scope_text(content, aspect) == text
    assert parse_scope(text) == (content, aspect)


@pytest.mark.parametrize("text", ["", "content:", "catalogue/", "tracks:1", "content"])
def test_malformed_scope_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        parse_scope(text)


# ------------------------------------------------------------ property


PURPOSES = ["ai-training", "personalization", "ai-generative-training"]
PARTIES = ["platform", "*", "acme"]
CONTENTS: list[list[str] | None] = [None, ["t1"], ["t1", "t2"]]
ASPECTS = ["all", "voice"]


@dataclass(frozen=True)
class Command:
    kind: str
    purpose: str
    party: str
    contents: list[str] | None
    aspect: str
    minutes: int
    effective_shift: int
    expires_after: int | None
    version: str
    target: int


commands = st.builds(
    Command,
    kind=st.sampled_from(
        ["grant", "grant", "revoke", "revoke", "accept", "expire", "void", "erase"]
    ),
    purpose=st.sampled_from(PURPOSES),
    party=st.sampled_from(PARTIES),
    contents=st.sampled_from(CONTENTS),
    aspect=st.sampled_from(ASPECTS),
    minutes=st.integers(1, 20),
    effective_shift=st.sampled_from([-60, 0, 0, 5]),
    expires_after=st.one_of(st.none(), st.integers(1, 30)),
    version=st.sampled_from(["v1", "v2"]),
    target=st.integers(0, 50),
)


def _build(script: Sequence[Command]) -> tuple[History, list[set[PermissionKey]]]:
    """Run the script; return the history and, per entry, the keys named so far."""
    h = History()
    keys: set[PermissionKey] = set()
    named: list[set[PermissionKey]] = []
    for c in script:
        if h.entries and isinstance(h.entries[-1].event, SubjectErased):
            break
        effective = h.now + timedelta(minutes=c.minutes + c.effective_shift)
        explicit = [e for e in h.entries if isinstance(e.event, ConsentGranted | ConsentRevoked)]
        voidable = explicit + [e for e in h.entries if isinstance(e.event, TermsAccepted)]
        expiring = [
            e
            for e in explicit
            if isinstance(e.event, ConsentGranted)
            and e.event.expires_at is not None
            and e.event.expires_at <= h.now + timedelta(minutes=c.minutes)
        ]
        if c.kind in ("grant", "revoke"):
            fields: dict[str, Any] = {
                "party": c.party,
                "content_ids": c.contents,
                "aspect": c.aspect,
                "minutes": c.minutes,
                "effective_at": effective,
            }
            if c.kind == "grant":
                if c.expires_after is not None:
                    fields["expires_at"] = effective + timedelta(minutes=c.expires_after)
                h.grant(c.purpose, **fields)
            else:
                h.revoke(c.purpose, **fields)
            contents: list[str | None] = [*c.contents] if c.contents else [None]
            for content in contents:
                keys.add(PermissionKey(c.purpose, c.party, content, c.aspect))
        elif c.kind == "accept":
            h.accept(c.version, minutes=c.minutes, effective_at=effective)
            keys |= {PermissionKey(p, "platform", None, "all") for p in TERMS_GOVERNED}
        elif c.kind == "expire" and expiring:
            grant = expiring[c.target % len(expiring)]
            assert isinstance(grant.event, ConsentGranted)
            h.expire(grant, minutes=c.minutes, effective_at=grant.event.expires_at)
        elif c.kind == "void" and voidable:
            h.void(voidable[c.target % len(voidable)], minutes=c.minutes)
        elif c.kind == "erase":
            h.erase(minutes=c.minutes)
        else:
            continue
        named.append(set(keys))
    return h, named


def _allowed(history: Sequence[Entry], key: PermissionKey) -> bool:
    """Ask the decision function directly, at the latest recorded_at of `history`."""
    if not history:
        return False
    at = max(e.event.recorded_at for e in history)
    question = Question(
        SUBJECT, VOCABULARY.purpose(key.purpose), key.party, key.content, key.aspect, at, at
    )
    return decide(history, TERMS, question, history[-1].position).allowed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=1, max_size=14))
def test_changes_and_states_match_the_decision_function_on_random_histories(
    script: list[Command],
) -> None:
    h, named = _build(script)
    steps = h.steps()
    assert steps == [derive_step(h.entries, i, TERMS, VOCABULARY) for i in range(len(steps))]
    table: dict[PermissionKey, bool] = {}
    for i, step in enumerate(steps):
        before, after = h.entries[:i], h.entries[: i + 1]
        expected = {
            key: _allowed(after, key)
            for key in sorted(named[i], key=PermissionKey.sort_key)
            if _allowed(after, key) != _allowed(before, key)
        }
        assert {c.key: c.allowed for c in step.changes} == expected, f"entry {i}"
        assert len(step.changes) == len({c.key for c in step.changes})
        for state in step.states:
            table[state.key] = state.allowed
        for key in step.erased:
            table.pop(key, None)
        if isinstance(step.entry.event, SubjectErased):
            assert table == {}
            assert set(step.erased) == named[i]
        else:
            assert table == {key: _allowed(after, key) for key in named[i]}, f"entry {i}"


def test_deriver_cache_answers_as_a_fresh_derivation() -> None:
    h = History()
    h.accept("v1")
    h.grant("ai-training", content_ids=["t1"])
    h.revoke("ai-training")
    h.void(h.entries[1])
    cached = h.steps()
    fresh = [derive_step(h.entries, i, TERMS, VOCABULARY) for i in range(len(h.entries))]
    assert cached == fresh
