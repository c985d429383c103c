"""The decision rules of the consent contract (BRIEF §2), as pure functions.

`decide(history, terms, question, ledger_position)` folds one subject's recorded events
into an answer. No clock, no I/O: `at` and `known_at` arrive in the question, and the
ledger position the answer reflects arrives as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from ledger.vocabulary import (
    ALL_ASPECTS,
    ANY_THIRD_PARTY,
    PLATFORM,
    Basis,
    ConsentModel,
    Purpose,
)

Explicit = ConsentGranted | ConsentRevoked


@dataclass(frozen=True)
class Question:
    """May `party` use `subject`'s content for `purpose`, at `at`, as known at `known_at`?

    `content` None asks about the catalogue as such; `aspect` "all" asks about every aspect.
    """

    subject: str
    purpose: Purpose
    party: str
    content: str | None
    aspect: str
    at: datetime
    known_at: datetime


@dataclass(frozen=True)
class Decision:
    """An answer, with the evidence it stands on and the ledger state it reflects."""

    allowed: bool
    basis: Basis
    event_ids: tuple[UUID, ...]
    terms_version: str | None
    position: int

    def to_json(self) -> dict[str, object]:
        """Return the answer as `check --json` and `GET /v1/check` print it."""
        return {
            "allowed": self.allowed,
            "basis": self.basis.value,
            "event_ids": [str(i) for i in self.event_ids],
            "terms_version": self.terms_version,
            "position": self.position,
        }


@dataclass(frozen=True)
class KnownState:
    """What the ledger held about a subject at `known_at`: live entries, erasure, voids."""

    live: tuple[Entry, ...]
    erasure: Entry | None
    voided: frozenset[UUID]


def known_state(history: Iterable[Entry], known_at: datetime) -> KnownState:
    """Keep the entries recorded by `known_at`, minus those voided by then.

    Voids and erasures act as soon as they are recorded, whatever the effective time.
    """
    known = [e for e in history if e.event.recorded_at <= known_at]
    voided = frozenset(e.event.voided_event_id for e in known if isinstance(e.event, EventVoided))
    erasure = next((e for e in known if isinstance(e.event, SubjectErased)), None)
    live = tuple(e for e in known if e.event.event_id not in voided)
    return KnownState(live=live, erasure=erasure, voided=voided)


def terms_in_force(
    live: Iterable[Entry], terms: Mapping[str, TermsPublished], at: datetime
) -> tuple[Entry, TermsPublished] | None:
    """Return the acceptance in force at `at` and its terms, or None.

    The one in force is the latest acceptance (by effective time, then position) that is
    effective by `at` and whose terms' own `effective_from` is by `at`.
    """
    best: tuple[Entry, TermsPublished] | None = None
    for entry in live:
        event = entry.event
        if not isinstance(event, TermsAccepted) or event.effective_at > at:
            continue
        published = terms.get(event.version)
        if published is None or published.effective_from > at:
            continue
        if best is None or (event.effective_at, entry.position) > (
            best[0].event.effective_at,
            best[0].position,
        ):
            best = (entry, published)
    return best


def covers(event: Explicit, question: Question) -> bool:
    """Tell whether an explicit event speaks to the question's purpose, party and scope."""
    if event.purpose != question.purpose.name:
        return False
    if question.party in (PLATFORM, ANY_THIRD_PARTY):
        if event.party != question.party:
            return False
    elif event.party not in (question.party, ANY_THIRD_PARTY):
        return False
    if event.content_ids is not None and (
        question.content is None or question.content not in event.content_ids
    ):
        return False
    return event.aspect in (ALL_ASPECTS, question.aspect)


def specificity(entry: Entry) -> tuple[bool, bool, bool, datetime, int]:
    """Rank an explicit event: named party, then content, then aspect, then latest."""
    event = entry.event
    assert isinstance(event, ConsentGranted | ConsentRevoked)
    return (
        event.party != ANY_THIRD_PARTY,
        event.content_ids is not None,
        event.aspect != ALL_ASPECTS,
        event.effective_at,
        entry.position,
    )


def is_expired(event: Explicit, at: datetime) -> bool:
    """Tell whether a grant no longer applies at `at` (expiry is exclusive)."""
    if not isinstance(event, ConsentGranted) or event.expires_at is None:
        return False
    return event.expires_at <= at


def candidates(live: Iterable[Entry], question: Question) -> list[Entry]:
    """Return the grants and revocations effective by `at` that cover the question."""
    found = []
    for entry in live:
        event = entry.event
        if (
            isinstance(event, ConsentGranted | ConsentRevoked)
            and event.effective_at <= question.at
            and covers(event, question)
        ):
            found.append(entry)
    return found


def decide(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: Question,
    ledger_position: int,
) -> Decision:
    """Answer `question` from one subject's `history` (BRIEF §2, rules 1-4).

    Requires `history` to hold only the subject's events and `terms` every published
    version it may have accepted. `ledger_position` is the highest position recorded by
    `question.known_at`; it is returned as the answer's `position`.
    """
    state = known_state(history, question.known_at)
    in_force = terms_in_force(state.live, terms, question.at)
    terms_version = in_force[1].version if in_force else None

    def answer(allowed: bool, basis: Basis, *ids: UUID) -> Decision:
        return Decision(allowed, basis, tuple(ids), terms_version, ledger_position)

    if state.erasure is not None:
        return answer(False, Basis.ERASED, state.erasure.event.event_id)

    found = candidates(state.live, question)
    applicable = [e for e in found if not is_expired(_explicit(e), question.at)]
    if applicable:
        winner = max(applicable, key=specificity)
        if isinstance(winner.event, ConsentGranted):
            return answer(True, Basis.EXPLICIT_GRANT, winner.event.event_id)
        decision = answer(False, Basis.EXPLICIT_REVOCATION, winner.event.event_id)
    elif question.party == PLATFORM and question.purpose.model is ConsentModel.TERMS_GOVERNED:
        if in_force is None:
            decision = answer(False, Basis.NO_TERMS_ACCEPTED)
        else:
            acceptance, published = in_force
            allowed = published.default_for(question.purpose.name) == "granted"
            decision = answer(allowed, Basis.TERMS_DEFAULT, acceptance.event.event_id)
            if allowed:
                return decision
    else:
        decision = answer(False, Basis.OPT_IN_REQUIRED)

    if found:
        would_have_decided = max(found, key=specificity)
        if is_expired(_explicit(would_have_decided), question.at):
            return answer(False, Basis.GRANT_EXPIRED, would_have_decided.event.event_id)
    return decision


def _explicit(entry: Entry) -> Explicit:
    event = entry.event
    assert isinstance(event, ConsentGranted | ConsentRevoked)
    return event
