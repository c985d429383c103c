"""Current permissions: the latest live fact per key, and the rules applied to read models.

`perm_current` holds, for every (subject, purpose, party, scope, aspect, model) that has a live
grant or revocation, its latest one by (effective_at, position); `perm_terms_current`
holds each subject's latest live terms acceptance. Both are functions of the event set
alone (not of the clock), so a rebuild gives identical tables. A tip answers a question
by itself when nothing could hide it: it is effective by `at`, not an expired grant, and
the question's `known_at` is no earlier than every recorded fact. Otherwise the timeline
answers (see `projections.timeline`).

`resolve` applies BRIEF §2 to the evidence a lookup returns through the one verdict of
`ledger.decisions`, the same function the replay calls; the property tests hold the
lookups (what they supply as candidates) equal to the replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from ledger.decisions import Decision, Grounds, Question, keys_of, verdict
from projections.timeline import (
    ERASURE_LOOKUP,
    GRANT,
    NULL_INT,
    NULL_TEXT,
    POSITION_HEAD,
    POSITION_KNOWN_AT,
    TAG_ERASURE,
    TAG_FRESHNESS,
    TAG_HEAD,
    TAG_POSITION,
    TAG_TERMS,
    Acceptance,
    Evidence,
    Fact,
    to_micros,
)


@dataclass(frozen=True, slots=True)
class TermsVersion:
    """A published terms version as the read side needs it: when, and its defaults."""

    version: str
    effective_from: int
    defaults: Mapping[str, str]  # purpose -> "granted" | "denied"


def resolve(question: Question, evidence: Evidence, terms: Mapping[str, TermsVersion]) -> Decision:
    """Answer `question` from its evidence (BRIEF §2, rules 1-4) by `ledger.decisions.verdict`.

    Requires `evidence.classes` in the order of `keys_of(question)` and `terms` to hold the
    version of `evidence.acceptance`. The contributor rule is applied by the caller.
    """
    acceptance = evidence.acceptance
    grounds = Grounds(
        erasure=UUID(evidence.erasure_event_id) if evidence.erasure_event_id else None,
        acceptance=(
            (
                UUID(acceptance.event_id),
                terms[acceptance.version].defaults.get(question.purpose.name),
            )
            if acceptance is not None
            else None
        ),
        terms_version=acceptance.version if acceptance is not None else None,
        position=evidence.position,
    )
    return verdict(question, evidence.classes, grounds)


_TIP_LOOKUP: Final = (
    "SELECT {tag} AS tag, kind, event_id, effective_at, position, expires_at, "
    + NULL_TEXT
    + ", conditions FROM perm_current WHERE subject = ? AND purpose = ? AND party = ? "
    "AND scope = ? AND aspect = ? AND model = ?"
)
_TIP_LOOKUPS: Final = tuple(_TIP_LOOKUP.format(tag=index) for index in range(16))
_TERMS_TIP_LOOKUP: Final = (
    f"SELECT {TAG_TERMS} AS tag, {NULL_INT}, event_id, effective_at, position, effective_from, "
    f"version, {NULL_TEXT} FROM perm_terms_current WHERE subject = ?"
)
HEAD_RECORDED: Final = (
    f"SELECT {TAG_HEAD} AS tag, {NULL_INT}, {NULL_TEXT}, {NULL_INT}, {NULL_INT}, MAX(recorded_at), "
    f"{NULL_TEXT}, {NULL_TEXT} FROM perm_clock"
)


def current_query(
    question: Question, *, known_at_given: bool, freshness: str | None = None
) -> tuple[str, list[Any]]:
    """Return one statement (and its parameters) that reads a question's tips.

    Its rows go to `read_current`, which says whether the tips alone can answer.
    """
    known_at = to_micros(question.known_at)
    parts: list[str] = []
    params: list[Any] = []
    for index, key in enumerate(keys_of(question)):
        parts.append(_TIP_LOOKUPS[index])
        params.extend(
            [question.subject, question.purpose.name, key.party, key.scope, key.aspect, key.model]
        )
    parts.append(_TERMS_TIP_LOOKUP)
    params.append(question.subject)
    parts.append(ERASURE_LOOKUP)
    params.extend([question.subject, known_at])
    if known_at_given:
        parts.append(POSITION_KNOWN_AT)
        params.append(known_at)
    else:
        parts.append(POSITION_HEAD)
    parts.append(HEAD_RECORDED)
    if freshness is not None:
        parts.append(freshness)
    return " UNION ALL ".join(parts), params


def tip_answers(fact: Fact, at: int) -> bool:
    """Tell whether a key's latest live fact is also its answer at `at`.

    True when the fact is effective by `at` (so no later fact can precede it) and is not
    an expired grant (so no earlier fact can show through).
    """
    return tip_row_answers(fact.kind, fact.effective_at, fact.expires_at, at)


def tip_row_answers(kind: int, effective_at: int, expires_at: int | None, at: int) -> bool:
    """Tell whether a tip, given as its raw columns, answers at `at` (see `tip_answers`).

    For scans of many tips, which need not build a `Fact` for each.
    """
    expired = kind == GRANT and expires_at is not None and expires_at <= at
    return effective_at <= at and not expired


def terms_tip_answers(acceptance: Acceptance, at: int) -> bool:
    """Tell whether a subject's latest live acceptance is the one in force at `at`."""
    return acceptance.effective_at <= at and acceptance.effective_from <= at


def read_current(
    rows: Sequence[Sequence[Any]], question: Question, key_count: int
) -> Evidence | None:
    """Return the `Evidence` in the rows of a `current_query`, or None if tips cannot answer.

    Tips answer only when every fact recorded so far is known at `question.known_at` and
    every tip found answers at `question.at`; a key without a tip has no live fact.
    """
    at = to_micros(question.at)
    classes: list[tuple[Fact | None, Fact | None]] = [(None, None)] * key_count
    acceptance = None
    erasure = None
    position = 0
    view_position = ledger_head = None
    for row in rows:
        tag = row[0]
        if tag < TAG_TERMS:
            fact = Fact(row[1], row[2], row[3], row[4], row[5], row[7])
            if not tip_answers(fact, at):
                return None
            classes[tag] = (fact, fact)
        elif tag == TAG_TERMS:
            acceptance = Acceptance(row[2], row[6], row[3], row[4], row[5])
            if not terms_tip_answers(acceptance, at):
                return None
        elif tag == TAG_ERASURE:
            erasure = row[2]
        elif tag == TAG_POSITION:
            position = row[4] or 0
        elif tag == TAG_HEAD and row[5] is not None and row[5] > to_micros(question.known_at):
            return None
        elif tag == TAG_FRESHNESS:
            view_position, ledger_head = row[4], row[5]
    return Evidence(tuple(classes), acceptance, erasure, position, view_position, ledger_head)
