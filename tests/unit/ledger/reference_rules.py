"""A deliberately simple, slow reference of BRIEF §2 and §2.1, to cross-check `decide`.

Written from the BRIEF's text alone, sharing no code with `ledger.decisions` beyond the
event classes: every question scans every event of the ledger, with no keys, classes or
indexes. It is the oracle of the property tests (like transparency-dev's reference
Merkle tree), never used by the product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    Entry,
    EventVoided,
    SubjectErased,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
)
from ledger.vocabulary import ConsentModel, Vocabulary

VOCABULARY = Vocabulary()


@dataclass(frozen=True)
class Answer:
    """The reference's answer, field for field what `Decision` holds."""

    allowed: bool
    basis: str
    event_ids: tuple[UUID, ...]
    terms_version: str | None
    position: int
    conditions: tuple[str, ...] = ()
    contributor: str | None = None
    contributor_basis: str | None = None


@dataclass(frozen=True)
class Ask:
    """A question, as the reference takes it."""

    subject: str
    purpose: str
    party: str
    content: str | None
    aspect: str
    model: str | None
    at: datetime
    known_at: datetime


def _live(ledger: Sequence[Entry], known_at: datetime) -> list[Entry]:
    known = [e for e in ledger if e.event.recorded_at <= known_at]
    voided = {e.event.voided_event_id for e in known if isinstance(e.event, EventVoided)}
    return [e for e in known if e.event.event_id not in voided]


def _of(entry: Entry, subject: str) -> bool:
    return isinstance(entry.event, SubjectEvent) and entry.event.subject == subject


def _party_matches(event_party: str, asked: str) -> bool:
    if asked == "platform":
        return event_party == "platform"
    if asked == "*":
        return event_party == "*"
    return event_party in (asked, "*")


def _scope_matches(content_ids: list[str] | None, asked: str | None) -> bool:
    if content_ids is None:
        return True
    return asked is not None and asked in content_ids


def _model_matches(event_model: str | None, asked: str | None) -> bool:
    return event_model is None or event_model == asked


def _rank(entry: Entry) -> tuple[bool, bool, bool, bool, datetime, int]:
    event = entry.event
    assert isinstance(event, ConsentGranted | ConsentRevoked)
    return (
        event.party != "*",
        event.content_ids is not None,
        event.aspect != "all",
        event.model is not None,
        event.effective_at,
        entry.position,
    )


def _expired(entry: Entry, at: datetime) -> bool:
    event = entry.event
    return (
        isinstance(event, ConsentGranted)
        and event.expires_at is not None
        and event.expires_at <= at
    )


def reference_owner(
    ledger: Sequence[Entry], terms: Mapping[str, TermsPublished], q: Ask, position: int
) -> Answer:
    """Answer by BRIEF §2 (with §2.1 model scope and conditions), contributors aside."""
    live = _live(ledger, q.known_at)
    known = [e for e in ledger if e.event.recorded_at <= q.known_at]
    acceptance: Entry | None = None
    for entry in live:
        event = entry.event
        if not (_of(entry, q.subject) and isinstance(event, TermsAccepted)):
            continue
        published = terms.get(event.version)
        if event.effective_at > q.at or published is None or published.effective_from > q.at:
            continue
        if acceptance is None or (event.effective_at, entry.position) > (
            acceptance.event.effective_at,
            acceptance.position,
        ):
            acceptance = entry
    version = acceptance.event.version if acceptance is not None else None  # type: ignore[attr-defined]

    for entry in known:
        if _of(entry, q.subject) and isinstance(entry.event, SubjectErased):
            return Answer(False, "erased", (entry.event.event_id,), version, position)

    found = [
        e
        for e in live
        if _of(e, q.subject)
        and isinstance(e.event, ConsentGranted | ConsentRevoked)
        and e.event.purpose == q.purpose
        and e.event.effective_at <= q.at
        and _party_matches(e.event.party, q.party)
        and _scope_matches(e.event.content_ids, q.content)
        and e.event.aspect in ("all", q.aspect)
        and _model_matches(e.event.model, q.model)
    ]
    applicable = [e for e in found if not _expired(e, q.at)]
    answer: Answer
    if applicable:
        winner = max(applicable, key=_rank)
        event = winner.event
        if isinstance(event, ConsentGranted):
            return Answer(
                True,
                "explicit-grant",
                (event.event_id,),
                version,
                position,
                tuple(event.conditions or ()),
            )
        answer = Answer(False, "explicit-revocation", (event.event_id,), version, position)
    elif (
        q.party == "platform" and VOCABULARY.purpose(q.purpose).model is ConsentModel.TERMS_GOVERNED
    ):
        if acceptance is None:
            answer = Answer(False, "no-terms-accepted", (), version, position)
        else:
            assert version is not None
            allowed = terms[version].default_for(q.purpose) == "granted"
            answer = Answer(
                allowed, "terms-default", (acceptance.event.event_id,), version, position
            )
            if allowed:
                return answer
    else:
        answer = Answer(False, "opt-in-required", (), version, position)
    if found:
        deciding = max(found, key=_rank)
        if _expired(deciding, q.at):
            return Answer(False, "grant-expired", (deciding.event.event_id,), version, position)
    return answer


def reference_decide(
    ledger: Sequence[Entry], terms: Mapping[str, TermsPublished], q: Ask, position: int
) -> Answer:
    """Answer by BRIEF §2 and §2.1 from the whole ledger (every subject's events)."""
    owner = reference_owner(ledger, terms, q, position)
    if not owner.allowed or q.content is None:
        return owner
    registrations = [
        e
        for e in _live(ledger, q.known_at)
        if isinstance(e.event, ContentRegistered)
        and e.event.content_id == q.content
        and e.event.effective_at <= q.at
    ]
    if not registrations:
        return owner
    in_force = max(registrations, key=lambda e: (e.event.effective_at, e.position))
    registered = in_force.event
    assert isinstance(registered, ContentRegistered)
    if registered.subject != q.subject:
        return owner
    for contributor in registered.contributors:
        for aspect in ("music", "voice", "likeness"):
            if aspect not in contributor["aspects"]:
                continue
            if q.aspect != "all" and q.aspect != aspect:
                continue
            asked = Ask(
                contributor["subject"],
                q.purpose,
                q.party,
                q.content,
                aspect,
                q.model,
                q.at,
                q.known_at,
            )
            answer = reference_owner(ledger, terms, asked, position)
            if not answer.allowed:
                return Answer(
                    False,
                    "contributor-denied",
                    answer.event_ids,
                    owner.terms_version,
                    owner.position,
                    (),
                    contributor["subject"],
                    answer.basis,
                )
    return owner
