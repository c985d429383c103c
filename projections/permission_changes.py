"""Derive the changes of *effective* permissions that each ledger event causes.

A subject's permissions are tracked per key, a (purpose, party, scope, aspect) tuple:
- every tuple that one of the subject's grants, revocations or expiries names (one key
  per content id of a content-scoped event, one for a catalogue-scoped event);
- once the subject has accepted any terms, the first party's catalogue-wide key of every
  terms-governed purpose, which the terms' defaults decide.

For the entry at index `i` of a subject's history, the state of each key *after* it is the
answer of `ledger.decisions.decide` for that key, asked at `t_i` (the latest `recorded_at`
among entries `0..i`) over the entries `0..i`; the state *before* it is the answer at
`t_(i-1)` over entries `0..i-1` (every key denied before the first entry). A key whose
`allowed` differs is a **change**. Comparing with the previous entry's instant, not with
the same instant, is what makes a recorded expiry (`ConsentExpired`) a change: the grant
it ends was still in force when the subject's previous event was recorded. Any change
that time alone brings (a grant that expires with no expiry recorded yet, a consent
scheduled to start later) is therefore reported with the subject's next event.

The output depends only on the ledger's entries, never on the clock or on what was
published before, so a relay that re-derives an entry after a crash emits the same
changes in the same order.

**Scope** (as published on Kafka): `catalogue` for the whole catalogue, `content:<id>` for
one content id; for an aspect other than `all` it is followed by `/<aspect>`, e.g.
`content:track-9/voice`. Content ids never hold `/` (see `check_identifier`), so the text
splits back unambiguously.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from uuid import UUID

from ledger.decisions import Decision, Question, decide
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SubjectErased,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
)
from ledger.scopes import (  # defined in the core; read models and tests name them from here
    ASPECT_SEPARATOR as ASPECT_SEPARATOR,
)
from ledger.scopes import CATALOGUE as CATALOGUE
from ledger.scopes import CONTENT_PREFIX as CONTENT_PREFIX
from ledger.scopes import parse_scope as parse_scope
from ledger.scopes import scope_text as scope_text
from ledger.vocabulary import ALL_ASPECTS, PLATFORM, Basis, ConsentModel, Vocabulary


@dataclass(frozen=True)
class PermissionKey:
    """One permission of a subject: a purpose, a party, a content id or None, an aspect."""

    purpose: str
    party: str
    content: str | None
    aspect: str

    @property
    def scope(self) -> str:
        """Return the published scope (see `scope_text`)."""
        return scope_text(self.content, self.aspect)

    def sort_key(self) -> tuple[str, str, bool, str, str]:
        """Return a total order: purpose, party, catalogue before content, id, aspect."""
        return (self.purpose, self.party, self.content is not None, self.content or "", self.aspect)


@dataclass(frozen=True)
class PermissionState:
    """The decision for one key of a subject, as of one ledger entry."""

    key: PermissionKey
    allowed: bool
    basis: Basis
    event_ids: tuple[UUID, ...]
    terms_version: str | None

    @classmethod
    def of(cls, key: PermissionKey, decision: Decision) -> PermissionState:
        """Return the state a decision gives a key (its ledger position is dropped)."""
        return cls(
            key, decision.allowed, decision.basis, decision.event_ids, decision.terms_version
        )


@dataclass(frozen=True)
class SubjectStep:
    """What one ledger entry did to its subject's permissions.

    `changes` holds the new state of each key whose `allowed` flipped; `states` the new
    state of each key that is new or whose decision changed in any way (allowed, basis,
    deciding events, terms version); `erased` every key of a subject the entry erased.
    Each tuple is in `PermissionKey.sort_key` order. A TermsPublished entry, which
    belongs to no subject, changes nothing.
    """

    entry: Entry
    subject: str | None
    changes: tuple[PermissionState, ...] = ()
    states: tuple[PermissionState, ...] = ()
    erased: tuple[PermissionKey, ...] = ()


def event_keys(entry: Entry, vocabulary: Vocabulary) -> list[PermissionKey]:
    """Return the keys one entry names (for an acceptance, the terms-governed defaults)."""
    event = entry.event
    if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
        contents: Iterable[str | None] = event.content_ids or [None]
        return [PermissionKey(event.purpose, event.party, c, event.aspect) for c in contents]
    if isinstance(event, TermsAccepted):
        return [
            PermissionKey(purpose.name, PLATFORM, None, ALL_ASPECTS)
            for purpose in vocabulary.purposes.values()
            if purpose.model is ConsentModel.TERMS_GOVERNED
        ]
    return []


def subject_keys(history: Iterable[Entry], vocabulary: Vocabulary) -> list[PermissionKey]:
    """Return every key the entries name, once each, in `PermissionKey.sort_key` order."""
    keys = {key for entry in history for key in event_keys(entry, vocabulary)}
    return sorted(keys, key=PermissionKey.sort_key)


def decision_instant(history: Sequence[Entry]) -> datetime:
    """Return the latest `recorded_at` of a non-empty history: the instant it is judged at."""
    return max(entry.event.recorded_at for entry in history)


def permission_states(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    vocabulary: Vocabulary,
    subject: str,
    keys: Iterable[PermissionKey],
) -> dict[PermissionKey, PermissionState]:
    """Return the state of each key after `history`, judged at its latest `recorded_at`.

    Requires `history` to hold only `subject`'s entries, in ledger order; an empty one
    gives each key the answer of an empty ledger (denied).
    """
    if not history:
        return {key: _empty_state(key, vocabulary) for key in keys}
    at = decision_instant(history)
    position = history[-1].position
    states = {}
    for key in keys:
        question = Question(
            subject=subject,
            purpose=vocabulary.purpose(key.purpose),
            party=key.party,
            content=key.content,
            aspect=key.aspect,
            at=at,
            known_at=at,
        )
        states[key] = PermissionState.of(key, decide(history, terms, question, position))
    return states


def _empty_state(key: PermissionKey, vocabulary: Vocabulary) -> PermissionState:
    purpose = vocabulary.purpose(key.purpose)
    terms_governed = purpose.model is ConsentModel.TERMS_GOVERNED and key.party == PLATFORM
    basis = Basis.NO_TERMS_ACCEPTED if terms_governed else Basis.OPT_IN_REQUIRED
    return PermissionState(key, False, basis, (), None)


@dataclass(frozen=True)
class _Prefix:
    """A subject's keys and their states after a prefix of its history (None: empty)."""

    keys: frozenset[PermissionKey]
    states: Mapping[PermissionKey, PermissionState]
    instant: datetime | None


_EMPTY_PREFIX: Final = _Prefix(frozenset(), {}, None)


@dataclass
class PermissionChangeDeriver:
    """Derive `SubjectStep`s entry by entry, reusing the states computed for the previous one.

    Between two entries, only some keys can change: those the new entry speaks to (the
    keys of its purpose, or of the purpose of the event it voids; every key for a terms
    acceptance, which changes every answer's terms version, or an erasure), unless an
    instant of an earlier entry (an effective time, an expiry, a terms version's
    `effective_from`) falls between the two decision instants, when all are recomputed.
    The others keep their state. `step` answers exactly as `derive_step`.
    """

    vocabulary: Vocabulary
    _cache: dict[tuple[str, int], _Prefix] = field(default_factory=dict)
    _max_cached: int = 4096

    def step(
        self, history: Sequence[Entry], index: int, terms: Mapping[str, TermsPublished]
    ) -> SubjectStep:
        """Return what `history[index]` did to its subject's permissions.

        Requires `history` to be one subject's entries in ledger order (entries after
        `index` are ignored) and `terms` to hold every version the subject accepted.
        """
        entry = history[index]
        event = entry.event
        if not isinstance(event, SubjectEvent):
            return SubjectStep(entry, None)
        subject = event.subject
        before_history, after_history = history[:index], history[: index + 1]
        previous = self._prefix(before_history, terms, subject)
        named = set(event_keys(entry, self.vocabulary)) - previous.keys
        before = dict(previous.states)
        before.update(permission_states(before_history, terms, self.vocabulary, subject, named))
        all_keys = previous.keys | named
        keys = sorted(all_keys, key=PermissionKey.sort_key)
        instant = decision_instant(after_history)
        affected = self._affected(before_history, entry, keys, previous.instant, instant, terms)
        after = dict(before)
        after.update(permission_states(after_history, terms, self.vocabulary, subject, affected))
        self._remember((subject, entry.position), _Prefix(all_keys, after, instant))
        changes = tuple(after[k] for k in keys if after[k].allowed != before[k].allowed)
        if isinstance(event, SubjectErased):
            return SubjectStep(entry, subject, changes=changes, erased=tuple(keys))
        states = tuple(after[k] for k in keys if k in named or after[k] != before[k])
        return SubjectStep(entry, subject, changes=changes, states=states)

    def _prefix(
        self, history: Sequence[Entry], terms: Mapping[str, TermsPublished], subject: str
    ) -> _Prefix:
        if not history:
            return _EMPTY_PREFIX
        cached = self._cache.get((subject, history[-1].position))
        if cached is not None:
            return cached
        keys = subject_keys(history, self.vocabulary)
        states = permission_states(history, terms, self.vocabulary, subject, keys)
        prefix = _Prefix(frozenset(keys), states, decision_instant(history))
        self._remember((subject, history[-1].position), prefix)
        return prefix

    def _remember(self, key: tuple[str, int], prefix: _Prefix) -> None:
        if len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache[key] = prefix

    @staticmethod
    def _affected(
        earlier: Sequence[Entry],
        entry: Entry,
        keys: list[PermissionKey],
        since: datetime | None,
        until: datetime,
        terms: Mapping[str, TermsPublished],
    ) -> list[PermissionKey]:
        """Return the keys whose state may differ after `entry` at `until` from `since`."""
        if since is None or _instant_between(earlier, terms, since, until):
            return keys
        event = entry.event
        if isinstance(event, EventVoided):
            target = next(
                (e.event for e in earlier if e.event.event_id == event.voided_event_id), None
            )
            event = target if target is not None else event
        if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
            return [k for k in keys if k.purpose == event.purpose]
        return keys  # an acceptance changes every answer's terms_version; erasure all


def _instant_between(
    entries: Sequence[Entry], terms: Mapping[str, TermsPublished], since: datetime, until: datetime
) -> bool:
    """Tell whether an instant the rules compare `at` with lies in (since, until]."""
    for entry in entries:
        event = entry.event
        instants = [event.effective_at]
        if isinstance(event, ConsentGranted) and event.expires_at is not None:
            instants.append(event.expires_at)
        if isinstance(event, TermsAccepted) and event.version in terms:
            instants.append(terms[event.version].effective_from)
        if any(since < instant <= until for instant in instants):
            return True
    return False


def derive_step(
    history: Sequence[Entry],
    index: int,
    terms: Mapping[str, TermsPublished],
    vocabulary: Vocabulary,
) -> SubjectStep:
    """Return what `history[index]` did to its subject's permissions.

    The reference: every key's state before and after, computed from scratch.
    `PermissionChangeDeriver.step` answers the same, faster.
    """
    entry = history[index]
    event = entry.event
    if not isinstance(event, SubjectEvent):
        return SubjectStep(entry, None)
    subject = event.subject
    before_history, after_history = history[:index], history[: index + 1]
    keys = subject_keys(after_history, vocabulary)
    before = permission_states(before_history, terms, vocabulary, subject, keys)
    after = permission_states(after_history, terms, vocabulary, subject, keys)
    changes = tuple(after[k] for k in keys if after[k].allowed != before[k].allowed)
    if isinstance(event, SubjectErased):
        return SubjectStep(entry, subject, changes=changes, erased=tuple(keys))
    known_before = set(subject_keys(before_history, vocabulary))
    states = tuple(after[k] for k in keys if k not in known_before or after[k] != before[k])
    return SubjectStep(entry, subject, changes=changes, states=states)
