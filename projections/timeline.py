"""The bitemporal timeline: every explicit consent fact, indexed for point-in-time lookups.

A grant or revocation becomes one row per scope (each content id, or `''` for the whole
catalogue) in `perm_facts`, keyed by (subject, purpose, party, scope, aspect, model) and
ordered by (effective_at, position). A question touches at most sixteen keys (party asked
or `*`, content or catalogue, aspect asked or `all`, model asked or none), one per
specificity class (`ledger.decisions.question_keys`, defined once there); for each key an
index scan backwards from `at` finds the first row recorded by `known_at` and not voided
by then: the latest candidate, and the latest one not expired at `at`. Terms acceptances,
erasures and the ledger clock have their own tables. Every lookup is a B-tree descent, so
its cost grows with the logarithm of the table, not with the length of any history.

Instants are stored as integer microseconds since the Unix epoch (UTC): comparable,
indexable and identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import orjson

from ledger.decisions import CATALOGUE, NO_MODEL, Question, keys_of

__all__ = ["CATALOGUE", "Acceptance", "Evidence", "Fact", "fact_rows", "from_micros", "to_micros"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

GRANT: Final = 1
"""`perm_facts.kind` of a ConsentGranted row."""
REVOCATION: Final = 2
"""`perm_facts.kind` of a ConsentRevoked row."""


def to_micros(value: datetime) -> int:
    """Return a timezone-aware instant as integer microseconds since the Unix epoch."""
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Return the UTC instant that `to_micros` encoded as `value`."""
    return EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class Fact:
    """An explicit grant or revocation as a lookup returns it."""

    kind: int
    event_id: str  # 32 lowercase hex digits
    effective_at: int
    position: int
    expires_at: int | None
    conditions: str | None = None  # a JSON list, for a grant with conditions

    def expired_at(self, at: int) -> bool:
        """Tell whether this is a grant that no longer applies at `at` (expiry is exclusive)."""
        return self.kind == GRANT and self.expires_at is not None and self.expires_at <= at

    # The `ledger.decisions.Candidate` protocol: the verdict reads facts through it.

    @property
    def granted(self) -> bool:
        """Tell whether the fact is a grant."""
        return self.kind == GRANT

    @property
    def uuid(self) -> UUID:
        """Return the fact's event id."""
        return UUID(self.event_id)

    @property
    def grant_conditions(self) -> tuple[str, ...]:
        """Return the grant's conditions (empty without any)."""
        return tuple(orjson.loads(self.conditions)) if self.conditions else ()

    def lapsed_at(self, at: datetime) -> bool:
        """Tell whether this is a grant that no longer applies at `at`."""
        return self.expired_at(to_micros(at))


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The terms acceptance in force, as a lookup returns it."""

    event_id: str
    version: str
    effective_at: int
    position: int
    effective_from: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the rules need to answer one question, read from the read models.

    `classes` holds, per key of `ledger.decisions.keys_of` (same order), the latest candidate fact
    ignoring expiry and the latest one not expired at `at` (None where there is none).
    """

    classes: tuple[tuple[Fact | None, Fact | None], ...]
    acceptance: Acceptance | None
    erasure_event_id: str | None
    position: int
    # Read in the same statement when asked (see `freshness_lookup`): the position the
    # view reflects and the ledger's head, so a reader can tell whether it lags.
    view_position: int | None = None
    ledger_head: int | None = None
    # Read in the same statement when asked (BRIEF §2.1): the registration in force of
    # the question's content, as (owner, contributors JSON), and whether it was read.
    registration: tuple[str, str] | None = None
    registration_read: bool = False

    @property
    def lagging(self) -> bool:
        """Tell whether the ledger held events the view had not applied when read."""
        return (self.ledger_head or 0) > (self.view_position or 0)


# Row tags in the UNION ALL answers: 2*i and 2*i+1 for key i, then these.
TAG_TERMS: Final = 100
TAG_ERASURE: Final = 101
TAG_POSITION: Final = 102
TAG_HEAD: Final = 103
TAG_FRESHNESS: Final = 104
TAG_REGISTRATION: Final = 105

# Every lookup answers the same eight columns so that one statement can union them; NULLs
# are typed because PostgreSQL resolves a UNION's column types pair by pair.
NULL_INT: Final = "CAST(NULL AS BIGINT)"
NULL_TEXT: Final = "CAST(NULL AS TEXT)"

_LIVE: Final = "recorded_at <= ? AND (voided_at IS NULL OR voided_at > ?)"

_FACT_LOOKUP: Final = (
    "SELECT {tag} AS tag, kind, event_id, effective_at, position, expires_at, "
    + NULL_TEXT
    + ", conditions FROM (SELECT kind, event_id, effective_at, position, expires_at, "
    "conditions FROM perm_facts "
    "WHERE subject = ? AND purpose = ? AND party = ? AND scope = ? AND aspect = ? "
    "AND model = ? "
    "AND effective_at <= ? AND " + _LIVE + "{applicable} "
    "ORDER BY effective_at DESC, position DESC LIMIT 1) AS f{tag}"
)
_NOT_EXPIRED: Final = " AND (expires_at IS NULL OR expires_at > ?)"
# Formatted once: per key index (at most 16 keys), the latest and latest-applicable lookups.
_FACT_LOOKUPS: Final = tuple(
    (
        _FACT_LOOKUP.format(tag=2 * index, applicable=""),
        _FACT_LOOKUP.format(tag=2 * index + 1, applicable=_NOT_EXPIRED),
    )
    for index in range(16)
)

_ACCEPTANCE_LOOKUP: Final = (
    f"SELECT {TAG_TERMS} AS tag, {NULL_INT}, event_id, effective_at, position, effective_from, "
    f"version, {NULL_TEXT} FROM (SELECT event_id, effective_at, position, effective_from, version "
    "FROM perm_acceptances WHERE subject = ? AND effective_at <= ? AND effective_from <= ? "
    "AND " + _LIVE + " ORDER BY effective_at DESC, position DESC LIMIT 1) AS a"
)
ERASURE_LOOKUP: Final = (
    f"SELECT {TAG_ERASURE} AS tag, {NULL_INT}, event_id, {NULL_INT}, {NULL_INT}, {NULL_INT}, "
    f"{NULL_TEXT}, {NULL_TEXT} FROM perm_erasures WHERE subject = ? AND recorded_at <= ?"
)
REGISTRATION_LOOKUP: Final = (
    f"SELECT {TAG_REGISTRATION} AS tag, {NULL_INT}, owner, {NULL_INT}, {NULL_INT}, {NULL_INT}, "
    f"contributors, {NULL_TEXT} FROM (SELECT owner, contributors FROM perm_registrations "
    "WHERE content_id = ? AND effective_at <= ? AND recorded_at <= ? "
    "AND (voided_at IS NULL OR voided_at > ?) "
    "ORDER BY effective_at DESC, position DESC LIMIT 1) AS g"
)
"""The registration in force of a content (params: content, at, known_at, known_at)."""
POSITION_KNOWN_AT: Final = (
    f"SELECT {TAG_POSITION} AS tag, {NULL_INT}, {NULL_TEXT}, {NULL_INT}, position, {NULL_INT}, "
    f"{NULL_TEXT}, {NULL_TEXT} FROM (SELECT position FROM perm_clock WHERE recorded_at <= ? "
    "ORDER BY recorded_at DESC, position DESC LIMIT 1) AS p"
)
POSITION_HEAD: Final = (
    f"SELECT {TAG_POSITION} AS tag, {NULL_INT}, {NULL_TEXT}, {NULL_INT}, MAX(position), "
    f"{NULL_INT}, {NULL_TEXT}, {NULL_TEXT} FROM perm_clock"
)


def freshness_lookup(events_table: str, position_column: str) -> str:
    """Return the lookup of the view's position and the ledger head (`events_table`'s
    highest `position_column`), to union with a question's lookups: one snapshot tells
    whether the answer reflects every write committed before the read.
    """
    return (
        f"SELECT {TAG_FRESHNESS} AS tag, {NULL_INT}, {NULL_TEXT}, {NULL_INT}, "
        f"(SELECT MAX(position) FROM perm_clock), "
        f"(SELECT MAX({position_column}) FROM {events_table}), {NULL_TEXT}, {NULL_TEXT}"
    )


def timeline_query(
    question: Question,
    *,
    known_at_given: bool,
    applicable: bool = True,
    freshness: str | None = None,
) -> tuple[str, list[Any]]:
    """Return one statement (and its parameters) that reads a question's `Evidence`.

    With `known_at_given` False the answer reflects everything projected (the view's
    head); otherwise the highest position recorded by `question.known_at`. With
    `applicable` False only each key's latest fact is read, which is enough unless one
    of them is a grant expired at `at` (see `read_evidence`).
    """
    at = to_micros(question.at)
    known_at = to_micros(question.known_at)
    parts: list[str] = []
    params: list[Any] = []
    base = [question.subject, question.purpose.name]
    for index, key in enumerate(keys_of(question)):
        key_params = [*base, key.party, key.scope, key.aspect, key.model, at, known_at, known_at]
        parts.append(_FACT_LOOKUPS[index][0])
        params.extend(key_params)
        if applicable:
            parts.append(_FACT_LOOKUPS[index][1])
            params.extend([*key_params, at])
    parts.append(_ACCEPTANCE_LOOKUP)
    params.extend([question.subject, at, at, known_at, known_at])
    parts.append(ERASURE_LOOKUP)
    params.extend([question.subject, known_at])
    if known_at_given:
        parts.append(POSITION_KNOWN_AT)
        params.append(known_at)
    else:
        parts.append(POSITION_HEAD)
    if freshness is not None:
        parts.append(freshness)
    return " UNION ALL ".join(parts), params


def read_evidence(
    rows: Sequence[Sequence[Any]], question: Question, key_count: int, *, applicable: bool = True
) -> Evidence | None:
    """Return the `Evidence` in the rows of a `timeline_query` statement.

    For a statement read without `applicable`, return None when some key's latest fact
    is a grant expired at `at`: an earlier fact of that key may apply, so the full
    statement must be read. Otherwise a key's latest fact is also its latest applicable.
    """
    slots: list[Fact | None] = [None] * (2 * key_count)
    acceptance = None
    erasure = None
    position = 0
    view_position = ledger_head = None
    at = to_micros(question.at)
    for row in rows:
        tag = row[0]
        if tag < TAG_TERMS:
            fact = Fact(row[1], row[2], row[3], row[4], row[5], row[7])
            slots[tag] = fact
            if not applicable:
                if fact.expired_at(at):
                    return None
                slots[tag + 1] = fact
        elif tag == TAG_TERMS:
            acceptance = Acceptance(row[2], row[6], row[3], row[4], row[5])
        elif tag == TAG_ERASURE:
            erasure = row[2]
        elif tag == TAG_POSITION:
            position = row[4] or 0
        elif tag == TAG_FRESHNESS:
            view_position, ledger_head = row[4], row[5]
    classes = tuple((slots[2 * i], slots[2 * i + 1]) for i in range(key_count))
    return Evidence(classes, acceptance, erasure, position, view_position, ledger_head)


def fact_rows(
    subject: str,
    purpose: str,
    party: str,
    content_ids: Sequence[str] | None,
    aspect: str,
    model: str | None,
    kind: int,
    event_id: str,
    effective_at: int,
    position: int,
    recorded_at: int,
    expires_at: int | None,
    conditions: Sequence[str] | None,
) -> Iterator[tuple[Any, ...]]:
    """Yield the `perm_facts` rows of one grant or revocation: one per scope."""
    held = orjson.dumps(list(conditions)).decode() if conditions else None
    for scope in content_ids or (CATALOGUE,):
        yield (
            subject,
            purpose,
            party,
            scope,
            aspect,
            effective_at,
            position,
            kind,
            event_id,
            recorded_at,
            expires_at,
            None,
            model or NO_MODEL,
            held,
        )
