"""Permission changes of registered works caused by their contributors (BRIEF §2.1).

A featured singer's revocation changes what the *owner* of each work they sing on may
allow: `work_changes` returns, for one ledger entry, the owner's permissions (per work,
purpose and party, aspect `all`) whose `allowed` flips when the entry is added, decided
by `ledger.decisions.decide` with the contributor rule over the ledger up to the entry.
An owner's own registration of a work is such an entry too (its contributors start to
count). Pure given the histories it is handed: the relay publishes what it returns on
the permission-changes topic, keyed by the owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ledger.decisions import Decision, Question, decide
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    Entry,
    EventVoided,
    SubjectEvent,
    TermsPublished,
)
from ledger.vocabulary import ALL_ASPECTS, ANY_THIRD_PARTY, PLATFORM, Vocabulary
from projections.permission_changes import PermissionKey, PermissionState

Histories = Callable[[str], Sequence[Entry]]
"""A subject's entries in ledger order (all of them; `work_changes` cuts them)."""


def work_changes(
    entry: Entry,
    works: Iterable[tuple[str, str]],
    histories: Histories,
    terms: Mapping[str, TermsPublished],
    vocabulary: Vocabulary,
) -> list[tuple[str, PermissionState]]:
    """Return (owner, new state) for each owner permission that `entry` flips.

    `works` are the (owner, content) pairs the entry may touch: those its subject
    contributes to (by any registration), or the work an owner's registration names.
    Each is asked before the entry (positions below it) and after, at the entry's
    `recorded_at`, about the purposes and parties the entry names (all purposes, and
    `platform` and `*`, for an entry naming none).
    """
    event = entry.event
    if not isinstance(event, SubjectEvent):
        return []
    purposes, parties = _named(entry, histories, vocabulary)
    at = event.recorded_at
    found: list[tuple[str, PermissionState]] = []
    for owner, content in sorted(set(works)):
        if owner == event.subject and not isinstance(event, ContentRegistered):
            continue  # the owner's own events are the subject's own permission changes
        for purpose in purposes:
            for party in parties:
                key = PermissionKey(purpose, party, content, ALL_ASPECTS)
                question = Question(
                    owner, vocabulary.purpose(purpose), party, content, ALL_ASPECTS, at, at
                )
                before = _decide(owner, question, entry.position - 1, histories, terms)
                after = _decide(owner, question, entry.position, histories, terms)
                if before.allowed != after.allowed:
                    found.append((owner, PermissionState.of(key, after)))
    return found


def _decide(
    owner: str,
    question: Question,
    upto: int,
    histories: Histories,
    terms: Mapping[str, TermsPublished],
) -> Decision:
    def cut(subject: str) -> Sequence[Entry]:
        return [e for e in histories(subject) if e.position <= upto]

    return decide(cut(owner), terms, question, upto, cut)


def _named(
    entry: Entry, histories: Histories, vocabulary: Vocabulary
) -> tuple[list[str], list[str]]:
    """Return the purposes and parties an entry speaks to (a void: its target's)."""
    event = entry.event
    if isinstance(event, EventVoided) and isinstance(event, SubjectEvent):
        target = next(
            (
                e.event
                for e in histories(event.subject)
                if e.event.event_id == event.voided_event_id
            ),
            None,
        )
        event = target if target is not None else event
    if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
        return [event.purpose], [event.party]
    return sorted(vocabulary.purposes), [PLATFORM, ANY_THIRD_PARTY]
