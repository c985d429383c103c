"""Turn ledger entries into read-model rows and write them: the projection's one write path.

`write_entries` projects a batch inside the caller's transaction. Rows are gathered
per table and written in bulk (`Batch`); an entry whose effect a statement must see
(a void, an erasure, a terms lookup) flushes what is gathered first, so the tables
always hold the effect of the entries in ledger order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from projections.permissions import TermsVersion
from projections.read_models.bulk import (
    DELETE_EXPIRY,
    INSERT_ACCEPTANCE,
    INSERT_CLOCK,
    INSERT_EXPIRY,
    INSERT_FACT,
    INSERT_REGISTRATION,
    INSERT_TERMS,
    KEY_COLUMNS,
    KEY_MATCH,
    RECOMPUTE_TERMS_TIP,
    RECOMPUTE_TIP,
    TIP_MODEL,
    UPSERT_TERMS_TIP,
    UPSERT_TIP,
    BulkWrite,
)
from projections.timeline import GRANT, REVOCATION, fact_rows, to_micros

__all__ = ["Batch", "Statements", "ViewConflictError", "write_entries"]


class ViewConflictError(Exception):
    """The tracking record moved since the batch was read: another projector applied it."""


class Statements(Protocol):
    """What the writer needs of a dialect: statement translation and bulk writes."""

    def sql(self, statement: str) -> str:
        """Return `statement` (`?` placeholders, bare names) in the dialect."""
        ...

    def bulk(self, cursor: Any, write: BulkWrite, rows: Sequence[Sequence[Any]]) -> None:
        """Apply `write` to `rows` inside the caller's transaction."""
        ...


@dataclass
class Batch:
    """Rows of one batch waiting to be written, in the order the tables need them."""

    facts: list[tuple[Any, ...]] = field(default_factory=list)
    tips: dict[tuple[str, ...], tuple[Any, ...]] = field(default_factory=dict)
    acceptances: list[tuple[Any, ...]] = field(default_factory=list)
    terms_tips: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    terms: list[tuple[Any, ...]] = field(default_factory=list)
    clock: list[tuple[int, int]] = field(default_factory=list)
    expiries: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    registrations: list[tuple[Any, ...]] = field(default_factory=list)

    def add_tip(self, row: tuple[Any, ...]) -> None:
        """Keep the latest fact per key; the upsert keeps the latest against the table."""
        key = (*row[:5], row[TIP_MODEL])
        held = self.tips.get(key)
        if held is None or (row[5], row[6]) > (held[5], held[6]):
            self.tips[key] = row

    def add_terms_tip(self, row: tuple[Any, ...]) -> None:
        """Keep the latest acceptance per subject."""
        held = self.terms_tips.get(row[0])
        if held is None or (row[1], row[2]) > (held[1], held[2]):
            self.terms_tips[row[0]] = row

    def flush(self, db: Statements, cursor: Any) -> Batch:
        """Write the rows gathered so far and return an empty batch to go on with."""
        db.bulk(cursor, INSERT_FACT, self.facts)
        db.bulk(cursor, UPSERT_TIP, list(self.tips.values()))
        db.bulk(cursor, INSERT_ACCEPTANCE, self.acceptances)
        db.bulk(cursor, UPSERT_TERMS_TIP, list(self.terms_tips.values()))
        db.bulk(cursor, INSERT_TERMS, self.terms)
        db.bulk(cursor, INSERT_CLOCK, self.clock)
        db.bulk(cursor, INSERT_EXPIRY, list(self.expiries.values()))
        db.bulk(cursor, DELETE_EXPIRY, [(g,) for g in self.expired])
        db.bulk(cursor, INSERT_REGISTRATION, self.registrations)
        return Batch()


def write_entries(
    db: Statements, cursor: Any, entries: Sequence[Entry], terms: dict[str, TermsVersion]
) -> None:
    """Write the rows of `entries` (ledger order) inside the caller's transaction.

    `terms` holds the published terms by version; it is read for acceptances and
    extended with the versions the entries publish or look up.
    """
    batch = Batch()
    for entry in entries:
        batch = project(db, cursor, batch, entry, terms)
    batch.flush(db, cursor)


def project(
    db: Statements, cursor: Any, batch: Batch, entry: Entry, terms: dict[str, TermsVersion]
) -> Batch:
    """Add one entry's rows to `batch`; flush first where a statement must see them."""
    event = entry.event
    position = entry.position
    recorded_at = to_micros(event.recorded_at)
    batch.clock.append((position, recorded_at))
    if isinstance(event, ConsentGranted | ConsentRevoked):
        granted = isinstance(event, ConsentGranted)
        expires_at = (
            to_micros(event.expires_at)
            if isinstance(event, ConsentGranted) and event.expires_at is not None
            else None
        )
        rows = list(
            fact_rows(
                event.subject,
                event.purpose,
                event.party,
                event.content_ids,
                event.aspect,
                event.model,
                GRANT if granted else REVOCATION,
                event.event_id.hex,
                to_micros(event.effective_at),
                position,
                recorded_at,
                expires_at,
                event.conditions if isinstance(event, ConsentGranted) else None,
            )
        )
        batch.facts.extend(rows)
        for row in rows:
            # every column but recorded_at and voided_at
            batch.add_tip((*row[:9], row[10], row[12], row[13]))
        if expires_at is not None:
            batch.expiries[event.event_id.hex] = (event.event_id.hex, event.subject, expires_at)
    elif isinstance(event, TermsAccepted):
        version = terms.get(event.version) or _load_terms(db, cursor, event.version)
        terms[version.version] = version
        row = (
            event.subject,
            to_micros(event.effective_at),
            position,
            event.event_id.hex,
            event.version,
            version.effective_from,
            recorded_at,
            None,
        )
        batch.acceptances.append(row)
        batch.add_terms_tip(row[:6])
    elif isinstance(event, TermsPublished):
        defaults = {c["purpose"]: c["default"] for c in event.clauses}
        published = TermsVersion(event.version, to_micros(event.effective_from), defaults)
        terms[event.version] = published
        batch.terms.append(
            (event.version, published.effective_from, position, orjson.dumps(defaults).decode())
        )
    elif isinstance(event, ContentRegistered):
        batch.registrations.append(
            (
                event.content_id,
                to_micros(event.effective_at),
                position,
                event.subject,
                event.event_id.hex,
                orjson.dumps(event.contributors).decode(),
                recorded_at,
                None,
            )
        )
    elif isinstance(event, ConsentExpired):
        if batch.expiries.pop(event.grant_event_id.hex, None) is None:
            batch.expired.append(event.grant_event_id.hex)
    elif isinstance(event, EventVoided):
        batch = batch.flush(db, cursor)
        _void(db, cursor, event.subject, event.voided_event_id.hex, recorded_at)
    elif isinstance(event, SubjectErased):
        batch = batch.flush(db, cursor)
        cursor.execute(
            db.sql(
                "INSERT INTO perm_erasures (subject, recorded_at, position, event_id) "
                "VALUES (?, ?, ?, ?)"
            ),
            [event.subject, recorded_at, position, event.event_id.hex],
        )
        cursor.execute(db.sql("DELETE FROM perm_expiries WHERE subject = ?"), [event.subject])
    return batch


def _void(db: Statements, cursor: Any, subject: str, event_id: str, voided_at: int) -> None:
    """Mark a grant, revocation or acceptance voided and recompute the tips it held.

    A void is recorded in its target's subject stream, so the target's rows are found
    under the subject prefix of the primary keys: no index on event ids, whose random
    keys would make every insert of a large rebuild touch a random page.
    """
    cursor.execute(
        db.sql(f"SELECT {KEY_COLUMNS} FROM perm_facts WHERE subject = ? AND event_id = ?"),
        [subject, event_id],
    )
    keys = [tuple(row) for row in cursor.fetchall()]
    if keys:
        cursor.execute(
            db.sql("UPDATE perm_facts SET voided_at = ? WHERE subject = ? AND event_id = ?"),
            [voided_at, subject, event_id],
        )
        for key in keys:
            cursor.execute(db.sql(f"DELETE FROM perm_current WHERE {KEY_MATCH}"), key)
            cursor.execute(db.sql(RECOMPUTE_TIP), key)
        cursor.execute(db.sql("DELETE FROM perm_expiries WHERE grant_event_id = ?"), [event_id])
        return
    cursor.execute(
        db.sql("UPDATE perm_registrations SET voided_at = ? WHERE owner = ? AND event_id = ?"),
        [voided_at, subject, event_id],
    )
    cursor.execute(
        db.sql("UPDATE perm_acceptances SET voided_at = ? WHERE subject = ? AND event_id = ?"),
        [voided_at, subject, event_id],
    )
    cursor.execute(db.sql("DELETE FROM perm_terms_current WHERE subject = ?"), [subject])
    cursor.execute(db.sql(RECOMPUTE_TERMS_TIP), [subject])


def _load_terms(db: Statements, cursor: Any, version: str) -> TermsVersion:
    """Read a published terms version from the view; refuse one not projected yet."""
    cursor.execute(
        db.sql("SELECT version, effective_from, defaults FROM perm_terms WHERE version = ?"),
        [version],
    )
    row = cursor.fetchone()
    if row is None:
        raise ViewConflictError(f"terms version {version!r} accepted before it was projected")
    return TermsVersion(row[0], row[1], orjson.loads(row[2]))
