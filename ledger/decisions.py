# long module: the whole decision contract (BRIEF §2 and §2.1) in one place, each rule once
"""The decision rules of the consent contract (BRIEF §2 and §2.1), as pure functions.

`decide(history, terms, question, ledger_position)` folds one subject's recorded events
into an answer. No clock, no I/O: `at` and `known_at` arrive in the question, and the
ledger position the answer reflects arrives as an argument.

Each rule exists once, here, and the read models reuse it: `question_keys` defines which
events cover a question and how specific each is; `verdict` picks the winner and the
basis from per-key candidates (the replay and the read models each supply their own);
`with_contributors` applies the contributor rule of §2.1 through an `ask` callback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol
from uuid import UUID

from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from ledger.vocabulary import (
    ALL_ASPECTS,
    ANY_THIRD_PARTY,
    CONTRIBUTOR_ASPECTS,
    PLATFORM,
    Basis,
    ConsentModel,
    Purpose,
)

Explicit = ConsentGranted | ConsentRevoked

CATALOGUE: Final = ""
"""The scope of a key for catalogue-wide events (content ids are never empty)."""
NO_MODEL: Final = ""
"""The model of a key for model-less events (model names are never empty)."""


@dataclass(frozen=True)
class Question:
    """May `party` use `subject`'s content for `purpose`, at `at`, as known at `known_at`?

    `content` None asks about the catalogue as such; `aspect` "all" asks about every aspect;
    `model` None asks about no model in particular (BRIEF §2.1).
    """

    subject: str
    purpose: Purpose
    party: str
    content: str | None
    aspect: str
    at: datetime
    known_at: datetime
    model: str | None = None


@dataclass(frozen=True)
class Decision:
    """An answer, with the evidence it stands on and the ledger state it reflects.

    `conditions` are those of the deciding grant of an allowed answer (BRIEF §2.1);
    `contributor` and `contributor_basis` name the contributor whose denial decided.
    """

    allowed: bool
    basis: Basis
    event_ids: tuple[UUID, ...]
    terms_version: str | None
    position: int
    conditions: tuple[str, ...] = ()
    contributor: str | None = None
    contributor_basis: Basis | None = None

    def to_json(self) -> dict[str, object]:
        """Return the answer as `check --json` and `GET /v1/check` print it."""
        body: dict[str, object] = {
            "allowed": self.allowed,
            "basis": self.basis.value,
            "event_ids": [str(i) for i in self.event_ids],
            "terms_version": self.terms_version,
            "position": self.position,
            "conditions": list(self.conditions),
        }
        if self.contributor is not None and self.contributor_basis is not None:
            body["contributor"] = self.contributor
            body["contributor_basis"] = self.contributor_basis.value
        return body


# ------------------------------------------------------------------ coverage


@dataclass(frozen=True, slots=True)
class Key:
    """One specificity class of a question: the party, scope and aspect of its events.

    `scope` is a content id or CATALOGUE; `model` a model name or NO_MODEL.
    """

    party: str
    scope: str
    aspect: str
    model: str = NO_MODEL


@functools.lru_cache(maxsize=4096)  # pure; asked several times per read
def question_keys(
    party: str, content: str | None, aspect: str, model: str | None = None
) -> tuple[Key, ...]:
    """Return the keys whose events cover a question, most specific first (§2 rule 2).

    A named third party is covered by its own events and by `*`; `platform` and `*` only
    by their own. Content is covered by its own events and the catalogue; the catalogue
    only by catalogue events. An aspect is covered by its own events and `all`. A model
    is covered by its own events and model-less ones; no model only by model-less ones.
    The order is named party, then content, then aspect, then model (BRIEF §2.1).
    """
    parties = (party,) if party in (PLATFORM, ANY_THIRD_PARTY) else (party, ANY_THIRD_PARTY)
    scopes = (CATALOGUE,) if content is None else (content, CATALOGUE)
    aspects = (ALL_ASPECTS,) if aspect == ALL_ASPECTS else (aspect, ALL_ASPECTS)
    models = (NO_MODEL,) if model is None else (model, NO_MODEL)
    return tuple(Key(p, s, a, m) for p in parties for s in scopes for a in aspects for m in models)


def keys_of(question: Question) -> tuple[Key, ...]:
    """Return `question_keys` for a question."""
    return question_keys(question.party, question.content, question.aspect, question.model)


def event_keys(event: Explicit) -> Iterable[Key]:
    """Yield the keys an explicit event is filed under: one per scope."""
    model = event.model or NO_MODEL
    for scope in event.content_ids or (CATALOGUE,):
        yield Key(event.party, scope, event.aspect, model)


def key_class(event: Explicit, question: Question, keys: Sequence[Key]) -> int | None:
    """Return the index in `keys` (the question's) of an event's key, or None if none."""
    if event.purpose != question.purpose.name:
        return None
    for key in event_keys(event):
        if key in keys:
            return keys.index(key)
    return None


def covers(event: Explicit, question: Question) -> bool:
    """Tell whether an explicit event speaks to the question's purpose, party and scope."""
    return key_class(event, question, keys_of(question)) is not None


# ------------------------------------------------------------------- verdict


class Candidate(Protocol):
    """An explicit event as a verdict needs it, whoever read it (replay or read model)."""

    @property
    def granted(self) -> bool:
        """Tell whether the event is a grant (else a revocation)."""

    @property
    def uuid(self) -> UUID:
        """Return the event's id."""

    @property
    def grant_conditions(self) -> tuple[str, ...]:
        """Return the grant's conditions (empty for a revocation)."""

    def lapsed_at(self, at: datetime) -> bool:
        """Tell whether this is a grant no longer applying at `at` (expiry is exclusive)."""


CandidateClasses = Sequence[tuple[Candidate | None, Candidate | None]]
"""Per key of `keys_of(question)`, in order: the latest candidate ignoring expiry, and
the latest one not expired at `at` (None where there is none)."""


@dataclass(frozen=True)
class Grounds:
    """Everything but the explicit candidates that a verdict stands on.

    `acceptance` is the terms acceptance in force at `at` and its terms' default for the
    question's purpose (None when the terms are silent).
    """

    erasure: UUID | None
    acceptance: tuple[UUID, str | None] | None
    terms_version: str | None
    position: int


def verdict(question: Question, classes: CandidateClasses, grounds: Grounds) -> Decision:
    """Answer `question` from its candidates per specificity class (§2 rules 1-4).

    The one rule that picks the winner and the basis: the replay (`decide`) and the read
    models both call it. Requires `classes` in the order of `keys_of(question)`.
    """
    terms_version = grounds.terms_version
    position = grounds.position
    if grounds.erasure is not None:
        return Decision(False, Basis.ERASED, (grounds.erasure,), terms_version, position)

    winner: Candidate | None = None
    deciding: Candidate | None = None  # the winner if expiry were ignored
    for latest, applicable in classes:
        if deciding is None:
            deciding = latest
        if applicable is not None:
            winner = applicable
            break

    if winner is not None:
        if winner.granted:
            return Decision(
                True,
                Basis.EXPLICIT_GRANT,
                (winner.uuid,),
                terms_version,
                position,
                winner.grant_conditions,
            )
        decision = Decision(
            False, Basis.EXPLICIT_REVOCATION, (winner.uuid,), terms_version, position
        )
    elif question.party == PLATFORM and question.purpose.model is ConsentModel.TERMS_GOVERNED:
        if grounds.acceptance is None:
            decision = Decision(False, Basis.NO_TERMS_ACCEPTED, (), terms_version, position)
        else:
            acceptance_id, default = grounds.acceptance
            allowed = default == "granted"
            decision = Decision(
                allowed, Basis.TERMS_DEFAULT, (acceptance_id,), terms_version, position
            )
            if allowed:
                return decision
    else:
        decision = Decision(False, Basis.OPT_IN_REQUIRED, (), terms_version, position)

    if deciding is not None and deciding.lapsed_at(question.at):
        return Decision(False, Basis.GRANT_EXPIRED, (deciding.uuid,), terms_version, position)
    return decision


# --------------------------------------------------------------- contributors


@dataclass(frozen=True)
class Registration:
    """A content's registration in force: its owner and contributors (BRIEF §2.1).

    `contributors` holds (subject, aspects) in registration order.
    """

    content_id: str
    owner: str
    contributors: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @classmethod
    def of(cls, event: ContentRegistered) -> Registration:
        """Return the registration an event records."""
        return cls(
            event.content_id,
            event.subject,
            tuple((c["subject"], tuple(c["aspects"])) for c in event.contributors),
        )


def contributor_questions(question: Question, registration: Registration) -> Iterable[Question]:
    """Yield the questions to ask a work's contributors, in the order §2.1 asks them.

    Contributors in registration order; for each, its aspects in the order music, voice,
    likeness: all it holds when the question asks about `all`, else the question's
    aspect if it holds it. Same purpose, party, model, content, `at` and `known_at`.
    """
    for subject, aspects in registration.contributors:
        for aspect in CONTRIBUTOR_ASPECTS:
            if aspect not in aspects:
                continue
            if question.aspect not in (ALL_ASPECTS, aspect):
                continue
            yield Question(
                subject,
                question.purpose,
                question.party,
                question.content,
                aspect,
                question.at,
                question.known_at,
                question.model,
            )


def with_contributors(
    question: Question,
    owner: Decision,
    registration: Registration | None,
    ask: Callable[[Question], Decision],
) -> Decision:
    """Apply the contributor rule (BRIEF §2.1) to the owner's answer `owner`.

    `registration` is the content's registration in force for the question (None if
    none); `ask` answers a contributor's question by §2 alone. The first contributor
    answer that is denied decides, with basis `contributor-denied`; the owner's
    `terms_version` and `position` stay.
    """
    if (
        not owner.allowed
        or question.content is None
        or registration is None
        or registration.owner != question.subject
    ):
        return owner
    for asked in contributor_questions(question, registration):
        answer = ask(asked)
        if not answer.allowed:
            return Decision(
                False,
                Basis.CONTRIBUTOR_DENIED,
                answer.event_ids,
                owner.terms_version,
                owner.position,
                (),
                asked.subject,
                answer.basis,
            )
    return owner


# -------------------------------------------------------------------- replay


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


def registration_in_force(live: Iterable[Entry], content: str, at: datetime) -> Registration | None:
    """Return the live registration of `content` effective by `at` with the latest
    effective time (ties by position), or None. Requires `live` known by `known_at`.
    """
    best: Entry | None = None
    for entry in live:
        event = entry.event
        if (
            isinstance(event, ContentRegistered)
            and event.content_id == content
            and event.effective_at <= at
            and (
                best is None
                or (event.effective_at, entry.position) > (best.event.effective_at, best.position)
            )
        ):
            best = entry
    if best is None:
        return None
    assert isinstance(best.event, ContentRegistered)
    return Registration.of(best.event)


@dataclass(frozen=True, slots=True)
class _Replayed:
    """An explicit event of the replay, seen as a verdict `Candidate`."""

    event: Explicit

    @property
    def granted(self) -> bool:
        return isinstance(self.event, ConsentGranted)

    @property
    def uuid(self) -> UUID:
        return self.event.event_id

    @property
    def grant_conditions(self) -> tuple[str, ...]:
        if isinstance(self.event, ConsentGranted) and self.event.conditions:
            return tuple(self.event.conditions)
        return ()

    def lapsed_at(self, at: datetime) -> bool:
        return is_expired(self.event, at)


def is_expired(event: Explicit, at: datetime) -> bool:
    """Tell whether a grant no longer applies at `at` (expiry is exclusive)."""
    if not isinstance(event, ConsentGranted) or event.expires_at is None:
        return False
    return event.expires_at <= at


def candidate_classes(live: Iterable[Entry], question: Question) -> CandidateClasses:
    """Return, per key of the question, its latest candidate and latest applicable one.

    Candidates are the grants and revocations effective by `at` that cover the question;
    "latest" is by (effective_at, position); "applicable" means not expired at `at`.
    """
    keys = keys_of(question)
    latest: list[Entry | None] = [None] * len(keys)
    applicable: list[Entry | None] = [None] * len(keys)
    for entry in live:
        event = entry.event
        if not isinstance(event, ConsentGranted | ConsentRevoked):
            continue
        if event.effective_at > question.at:
            continue
        index = key_class(event, question, keys)
        if index is None:
            continue
        rank = (event.effective_at, entry.position)
        held = latest[index]
        if held is None or rank > (held.event.effective_at, held.position):
            latest[index] = entry
        if not is_expired(event, question.at):
            held = applicable[index]
            if held is None or rank > (held.event.effective_at, held.position):
                applicable[index] = entry
    return [(_candidate(a), _candidate(b)) for a, b in zip(latest, applicable, strict=True)]


def _candidate(entry: Entry | None) -> Candidate | None:
    if entry is None:
        return None
    event = entry.event
    assert isinstance(event, ConsentGranted | ConsentRevoked)
    return _Replayed(event)


def decide_subject(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: Question,
    ledger_position: int,
) -> Decision:
    """Answer `question` from one subject's `history` by §2 alone (no contributors)."""
    state = known_state(history, question.known_at)
    in_force = terms_in_force(state.live, terms, question.at)
    acceptance = (
        (in_force[0].event.event_id, in_force[1].default_for(question.purpose.name))
        if in_force is not None
        else None
    )
    grounds = Grounds(
        erasure=state.erasure.event.event_id if state.erasure is not None else None,
        acceptance=acceptance,
        terms_version=in_force[1].version if in_force else None,
        position=ledger_position,
    )
    return verdict(question, candidate_classes(state.live, question), grounds)


def decide(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: Question,
    ledger_position: int,
    histories: Callable[[str], Sequence[Entry]] | None = None,
) -> Decision:
    """Answer `question` from one subject's `history` (BRIEF §2 rules 1-4 and §2.1).

    Requires `history` to hold only the subject's events and `terms` every published
    version it may have accepted. `ledger_position` is the highest position recorded by
    `question.known_at`; it is returned as the answer's `position`. `histories` returns
    another subject's events, for the contributors of a registered work; without it the
    contributor rule is not applied.
    """
    owner = decide_subject(history, terms, question, ledger_position)
    if histories is None or question.content is None or not owner.allowed:
        return owner
    live = known_state(history, question.known_at).live
    registration = registration_in_force(live, question.content, question.at)

    def ask(asked: Question) -> Decision:
        assert histories is not None
        return decide_subject(histories(asked.subject), terms, asked, ledger_position)

    return with_contributors(question, owner, registration, ask)
