"""The permissions read models in SQL, kept by an `eventsourcing` tracking recorder.

`PermissionsView` is a `TrackingRecorder` of the `eventsourcing` library (SQLite or
PostgreSQL flavour, on the ledger's own datastore) that also owns the read-model tables
(`perm_*`). `apply` writes one batch of ledger entries into every table *and* the
tracking record in one transaction: a crash at any point leaves both as they were before
the batch, and a batch is applied only if the tracking record still holds the position
it was read after, so no event is ever applied twice. Its tracking row is named
`<ledger>:permissions` so that other views in the same database keep rows of their own.

Statements are written once, with `?` placeholders and bare `perm_*` table names, and
translated for PostgreSQL (placeholders, schema-qualified names).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, cast

import orjson
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresDatastore, PostgresFactory, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteFactory, SQLiteTrackingRecorder

from ledger.application import ConsentLedger
from ledger.decisions import Question
from ledger.errors import StoreUnavailableError
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from projections.permissions import TermsVersion, current_query, read_current
from projections.timeline import (
    CATALOGUE,
    GRANT,
    REVOCATION,
    Evidence,
    Fact,
    fact_rows,
    freshness_lookup,
    question_keys,
    read_evidence,
    timeline_query,
    to_micros,
)

Fault = Callable[[str], None]
"""A test hook called at named points of a batch ("mid-batch", "before-tracking")."""

_TABLES: Final = (
    # table, primary key (also the order of a dump)
    ("perm_facts", "subject, purpose, party, scope, aspect, effective_at, position"),
    ("perm_current", "subject, purpose, party, scope, aspect"),
    ("perm_acceptances", "subject, effective_at, position"),
    ("perm_terms_current", "subject"),
    ("perm_terms", "version"),
    ("perm_erasures", "subject"),
    ("perm_clock", "position"),
    ("perm_expiries", "grant_event_id"),
)
TABLE_NAMES: Final = tuple(name for name, _ in _TABLES)

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS perm_facts ("
    " subject TEXT NOT NULL, purpose TEXT NOT NULL, party TEXT NOT NULL,"
    " scope TEXT NOT NULL, aspect TEXT NOT NULL,"
    " effective_at BIGINT NOT NULL, position BIGINT NOT NULL, kind SMALLINT NOT NULL,"
    " event_id TEXT NOT NULL, recorded_at BIGINT NOT NULL, expires_at BIGINT, voided_at BIGINT,"
    " PRIMARY KEY (subject, purpose, party, scope, aspect, effective_at, position)){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_current ("
    " subject TEXT NOT NULL, purpose TEXT NOT NULL, party TEXT NOT NULL,"
    " scope TEXT NOT NULL, aspect TEXT NOT NULL,"
    " effective_at BIGINT NOT NULL, position BIGINT NOT NULL, kind SMALLINT NOT NULL,"
    " event_id TEXT NOT NULL, expires_at BIGINT,"
    " PRIMARY KEY (subject, purpose, party, scope, aspect)){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_acceptances ("
    " subject TEXT NOT NULL, effective_at BIGINT NOT NULL, position BIGINT NOT NULL,"
    " event_id TEXT NOT NULL, version TEXT NOT NULL, effective_from BIGINT NOT NULL,"
    " recorded_at BIGINT NOT NULL, voided_at BIGINT,"
    " PRIMARY KEY (subject, effective_at, position)){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_terms_current ("
    " subject TEXT NOT NULL PRIMARY KEY, effective_at BIGINT NOT NULL,"
    " position BIGINT NOT NULL, event_id TEXT NOT NULL, version TEXT NOT NULL,"
    " effective_from BIGINT NOT NULL){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_terms ("
    " version TEXT NOT NULL PRIMARY KEY, effective_from BIGINT NOT NULL,"
    " position BIGINT NOT NULL, defaults TEXT NOT NULL){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_erasures ("
    " subject TEXT NOT NULL PRIMARY KEY, recorded_at BIGINT NOT NULL,"
    " position BIGINT NOT NULL, event_id TEXT NOT NULL){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_clock ("
    " position BIGINT NOT NULL PRIMARY KEY, recorded_at BIGINT NOT NULL){rowid}",
    "CREATE INDEX IF NOT EXISTS ix_perm_clock_recorded ON perm_clock (recorded_at, position)",
    "CREATE TABLE IF NOT EXISTS perm_expiries ("
    " grant_event_id TEXT NOT NULL PRIMARY KEY, subject TEXT NOT NULL,"
    " expires_at BIGINT NOT NULL){rowid}",
    "CREATE INDEX IF NOT EXISTS ix_perm_expiries_due ON perm_expiries (expires_at)",
    "CREATE INDEX IF NOT EXISTS ix_perm_expiries_subject ON perm_expiries (subject)",
)


@dataclass(frozen=True)
class BulkWrite:
    """A statement applied to many rows at once: an insert (or upsert) or a delete by key.

    SQLite runs it row by row (`executemany`, in-process); PostgreSQL as one statement
    over arrays (`unnest`), because a round trip per row would cost more than the row.
    """

    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # PostgreSQL element types of the columns
    conflict: str = ""  # an ON CONFLICT clause; the table is aliased `c`
    delete: bool = False  # DELETE the rows whose (single) column matches

    def rowwise(self) -> str:
        """Return the statement for one row (`?` placeholders)."""
        if self.delete:
            return f"DELETE FROM {self.table} WHERE {self.columns[0]} = ?"
        marks = ", ".join("?" * len(self.columns))
        names = ", ".join(self.columns)
        return f"INSERT INTO {self.table} AS c ({names}) VALUES ({marks}) {self.conflict}"

    def setwise(self) -> str:
        """Return the statement for all rows, one array parameter per column."""
        if self.delete:
            return f"DELETE FROM {self.table} WHERE {self.columns[0]} = ANY(?::{self.types[0]}[])"
        arrays = ", ".join(f"?::{t}[]" for t in self.types)
        names = ", ".join(self.columns)
        return (
            f"INSERT INTO {self.table} AS c ({names}) SELECT * FROM unnest({arrays}) "
            f"{self.conflict}"
        )


_KEY: Final = ("subject", "purpose", "party", "scope", "aspect")
_KEY_TYPES: Final = ("text",) * 5
_INSERT_FACT: Final = BulkWrite(
    "perm_facts",
    (*_KEY, "effective_at", "position", "kind", "event_id", "recorded_at", "expires_at",
     "voided_at"),
    (*_KEY_TYPES, "bigint", "bigint", "smallint", "text", "bigint", "bigint", "bigint"),
)  # fmt: skip
_TIP_COLUMNS: Final = (*_KEY, "effective_at", "position", "kind", "event_id", "expires_at")
# A tip only moves forward: an upsert replaces it only with a later fact.
_UPSERT_TIP: Final = BulkWrite(
    "perm_current",
    _TIP_COLUMNS,
    (*_KEY_TYPES, "bigint", "bigint", "smallint", "text", "bigint"),
    "ON CONFLICT (subject, purpose, party, scope, aspect) DO UPDATE SET "
    "effective_at = excluded.effective_at, position = excluded.position, "
    "kind = excluded.kind, event_id = excluded.event_id, expires_at = excluded.expires_at "
    "WHERE (excluded.effective_at, excluded.position) > (c.effective_at, c.position)",
)
_KEY_MATCH: Final = "subject = ? AND purpose = ? AND party = ? AND scope = ? AND aspect = ?"
_RECOMPUTE_TIP: Final = (
    f"INSERT INTO perm_current ({', '.join(_TIP_COLUMNS)}) SELECT {', '.join(_TIP_COLUMNS)} "
    f"FROM perm_facts WHERE {_KEY_MATCH} AND voided_at IS NULL "
    "ORDER BY effective_at DESC, position DESC LIMIT 1"
)
_INSERT_ACCEPTANCE: Final = BulkWrite(
    "perm_acceptances",
    ("subject", "effective_at", "position", "event_id", "version", "effective_from",
     "recorded_at", "voided_at"),
    ("text", "bigint", "bigint", "text", "text", "bigint", "bigint", "bigint"),
)  # fmt: skip
_TERMS_TIP_COLUMNS: Final = (
    "subject", "effective_at", "position", "event_id", "version", "effective_from",
)  # fmt: skip
_UPSERT_TERMS_TIP: Final = BulkWrite(
    "perm_terms_current",
    _TERMS_TIP_COLUMNS,
    ("text", "bigint", "bigint", "text", "text", "bigint"),
    "ON CONFLICT (subject) DO UPDATE SET effective_at = excluded.effective_at, "
    "position = excluded.position, event_id = excluded.event_id, version = excluded.version, "
    "effective_from = excluded.effective_from "
    "WHERE (excluded.effective_at, excluded.position) > (c.effective_at, c.position)",
)
_RECOMPUTE_TERMS_TIP: Final = (
    f"INSERT INTO perm_terms_current ({', '.join(_TERMS_TIP_COLUMNS)}) "
    f"SELECT {', '.join(_TERMS_TIP_COLUMNS)} FROM perm_acceptances "
    "WHERE subject = ? AND voided_at IS NULL ORDER BY effective_at DESC, position DESC LIMIT 1"
)
_INSERT_TERMS: Final = BulkWrite(
    "perm_terms",
    ("version", "effective_from", "position", "defaults"),
    ("text", "bigint", "bigint", "text"),
)
_INSERT_CLOCK: Final = BulkWrite("perm_clock", ("position", "recorded_at"), ("bigint", "bigint"))
_INSERT_EXPIRY: Final = BulkWrite(
    "perm_expiries", ("grant_event_id", "subject", "expires_at"), ("text", "text", "bigint")
)
_DELETE_EXPIRY: Final = BulkWrite("perm_expiries", ("grant_event_id",), ("text",), delete=True)

_PG_TABLE: Final = re.compile(r"\bperm_\w+")


class ViewConflictError(Exception):
    """The tracking record moved since the batch was read: another projector applied it."""


@dataclass
class _Batch:
    """Rows of one batch waiting to be written, in the order the tables need them."""

    facts: list[tuple[Any, ...]] = field(default_factory=list)
    tips: dict[tuple[str, ...], tuple[Any, ...]] = field(default_factory=dict)
    acceptances: list[tuple[Any, ...]] = field(default_factory=list)
    terms_tips: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    terms: list[tuple[Any, ...]] = field(default_factory=list)
    clock: list[tuple[int, int]] = field(default_factory=list)
    expiries: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)

    def add_tip(self, row: tuple[Any, ...]) -> None:
        """Keep the latest fact per key; the upsert keeps the latest against the table."""
        key = row[:5]
        held = self.tips.get(key)
        if held is None or (row[5], row[6]) > (held[5], held[6]):
            self.tips[key] = row

    def add_terms_tip(self, row: tuple[Any, ...]) -> None:
        """Keep the latest acceptance per subject."""
        held = self.terms_tips.get(row[0])
        if held is None or (row[1], row[2]) > (held[1], held[2]):
            self.terms_tips[row[0]] = row


class PermissionsView(TrackingRecorder):
    """The permissions read models and their tracking record (one dialect per subclass)."""

    dialect: str = ""
    tracking_name: str = "ConsentLedger:permissions"
    freshness: str | None = None  # the lookup of the ledger head (see `follow`)
    _terms_cache: dict[str, TermsVersion]

    # ------------------------------------------------------------ dialect hooks

    def _write(self) -> AbstractContextManager[Any]:
        """Return a context yielding a cursor in one read-write transaction."""
        raise NotImplementedError

    def _query(self, statement: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """Run one read-only statement and return its rows (indexable)."""
        raise NotImplementedError

    def _tracking_table(self) -> str:
        """Return the (qualified) name of the library's tracking table."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the view holds beyond the ledger's datastore."""

    def _track(self, cursor: Any, position: int) -> None:
        """Advance the tracking record inside the caller's transaction."""
        raise NotImplementedError

    def _create_tracking_table(self) -> None:
        """Create the library's tracking table."""
        raise NotImplementedError

    def _lock_ddl(self, cursor: Any) -> None:
        """Serialise table creation between processes (SQLite's write lock already does)."""

    def _bulk(self, cursor: Any, write: BulkWrite, rows: Sequence[Sequence[Any]]) -> None:
        """Apply `write` to `rows` inside the caller's transaction (row by row here)."""
        if rows:
            cursor.executemany(self.sql(write.rowwise()), rows)

    # ------------------------------------------------------------------- set-up

    def sql(self, statement: str) -> str:
        """Return `statement` in this dialect (placeholders, qualified table names)."""
        return statement

    def ddl(self) -> list[str]:
        """Return the statements that create the read-model tables (idempotent)."""
        rowid = " WITHOUT ROWID" if self.dialect == "sqlite" else ""
        return [self.sql(s.replace("{rowid}", rowid)) for s in _DDL]

    def create_table(self) -> None:
        """Create the tracking table, the read-model tables and this view's tracking row."""
        self._create_tracking_table()
        with self._write() as cursor:
            self._lock_ddl(cursor)
            for statement in self.ddl():
                cursor.execute(statement)
            cursor.execute(
                self.sql(
                    f"SELECT notification_id FROM {self._tracking_table()} "
                    "WHERE application_name = ?"
                ),
                [self.tracking_name],
            )
            if cursor.fetchone() is None:
                cursor.execute(
                    self.sql(
                        f"INSERT INTO {self._tracking_table()} "
                        "(application_name, notification_id) VALUES (?, ?) "
                        "ON CONFLICT (application_name) DO NOTHING"
                    ),
                    [self.tracking_name, 0],
                )

    # ----------------------------------------------------------------- position

    def position(self) -> int:
        """Return the ledger position the read models reflect (0 before any event)."""
        return self.max_tracking_id(self.tracking_name) or 0

    def _lock_position(self, cursor: Any) -> int:
        """Lock this view's tracking row for the transaction and return its position.

        A no-op update takes the write lock first (SQLite) or the row lock (PostgreSQL),
        so concurrent projectors queue here and each sees the other's committed position.
        """
        cursor.execute(
            self.sql(
                f"UPDATE {self._tracking_table()} SET notification_id = notification_id "
                "WHERE application_name = ? RETURNING notification_id"
            ),
            [self.tracking_name],
        )
        row = cursor.fetchone()
        if row is None:
            raise ViewConflictError(f"tracking row {self.tracking_name!r} is missing")
        return int(row[0])

    # --------------------------------------------------------------------- write

    def apply(self, entries: Sequence[Entry], *, after: int, fault: Fault | None = None) -> int:
        """Apply `entries` (ledger order, all after position `after`) in one transaction.

        Writes every read-model row and advances the tracking record to the last entry's
        position, atomically. Raises ViewConflictError, writing nothing, if the view's
        position is no longer `after` (another projector got there first).
        """
        if not entries:
            return after
        terms = dict(self._terms_cache)
        try:
            with self._write() as cursor:
                held = self._lock_position(cursor)
                if held != after:
                    raise ViewConflictError(
                        f"view {self.tracking_name!r} is at position {held}, not {after}"
                    )
                batch = _Batch()
                middle = len(entries) // 2
                for index, entry in enumerate(entries):
                    if fault is not None and index == middle and index > 0:
                        self._flush(cursor, batch)
                        batch = _Batch()
                        fault("mid-batch")
                    batch = self._project(cursor, batch, entry, terms)
                self._flush(cursor, batch)
                if fault is not None:
                    fault("before-tracking")
                self._track(cursor, entries[-1].position)
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"the read models are unavailable: {error}") from None
        self._terms_cache.update(terms)
        return entries[-1].position

    def _project(
        self, cursor: Any, batch: _Batch, entry: Entry, terms: dict[str, TermsVersion]
    ) -> _Batch:
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
                    GRANT if granted else REVOCATION,
                    event.event_id.hex,
                    to_micros(event.effective_at),
                    position,
                    recorded_at,
                    expires_at,
                )
            )
            batch.facts.extend(rows)
            for row in rows:
                batch.add_tip((*row[:9], row[10]))
            if expires_at is not None:
                batch.expiries[event.event_id.hex] = (event.event_id.hex, event.subject, expires_at)
        elif isinstance(event, TermsAccepted):
            version = terms.get(event.version) or self._load_terms(cursor, event.version)
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
        elif isinstance(event, ConsentExpired):
            if batch.expiries.pop(event.grant_event_id.hex, None) is None:
                batch.expired.append(event.grant_event_id.hex)
        elif isinstance(event, EventVoided):
            self._flush(cursor, batch)
            self._void(cursor, event.subject, event.voided_event_id.hex, recorded_at)
            return _Batch()
        elif isinstance(event, SubjectErased):
            self._flush(cursor, batch)
            cursor.execute(
                self.sql(
                    "INSERT INTO perm_erasures (subject, recorded_at, position, event_id) "
                    "VALUES (?, ?, ?, ?)"
                ),
                [event.subject, recorded_at, position, event.event_id.hex],
            )
            cursor.execute(self.sql("DELETE FROM perm_expiries WHERE subject = ?"), [event.subject])
            return _Batch()
        return batch

    def _flush(self, cursor: Any, batch: _Batch) -> None:
        """Write a batch's rows; afterwards statements in the transaction see them."""
        self._bulk(cursor, _INSERT_FACT, batch.facts)
        self._bulk(cursor, _UPSERT_TIP, list(batch.tips.values()))
        self._bulk(cursor, _INSERT_ACCEPTANCE, batch.acceptances)
        self._bulk(cursor, _UPSERT_TERMS_TIP, list(batch.terms_tips.values()))
        self._bulk(cursor, _INSERT_TERMS, batch.terms)
        self._bulk(cursor, _INSERT_CLOCK, batch.clock)
        self._bulk(cursor, _INSERT_EXPIRY, list(batch.expiries.values()))
        self._bulk(cursor, _DELETE_EXPIRY, [(g,) for g in batch.expired])

    def _void(self, cursor: Any, subject: str, event_id: str, voided_at: int) -> None:
        """Mark a grant, revocation or acceptance voided and recompute the tips it held.

        A void is recorded in its target's subject stream, so the target's rows are found
        under the subject prefix of the primary keys: no index on event ids, whose random
        keys would make every insert of a large rebuild touch a random page.
        """
        cursor.execute(
            self.sql(
                "SELECT subject, purpose, party, scope, aspect FROM perm_facts "
                "WHERE subject = ? AND event_id = ?"
            ),
            [subject, event_id],
        )
        keys = [tuple(row) for row in cursor.fetchall()]
        if keys:
            cursor.execute(
                self.sql("UPDATE perm_facts SET voided_at = ? WHERE subject = ? AND event_id = ?"),
                [voided_at, subject, event_id],
            )
            for key in keys:
                cursor.execute(self.sql(f"DELETE FROM perm_current WHERE {_KEY_MATCH}"), key)
                cursor.execute(self.sql(_RECOMPUTE_TIP), key)
            cursor.execute(
                self.sql("DELETE FROM perm_expiries WHERE grant_event_id = ?"), [event_id]
            )
            return
        cursor.execute(
            self.sql(
                "UPDATE perm_acceptances SET voided_at = ? WHERE subject = ? AND event_id = ?"
            ),
            [voided_at, subject, event_id],
        )
        cursor.execute(self.sql("DELETE FROM perm_terms_current WHERE subject = ?"), [subject])
        cursor.execute(self.sql(_RECOMPUTE_TERMS_TIP), [subject])

    def _load_terms(self, cursor: Any, version: str) -> TermsVersion:
        cursor.execute(
            self.sql("SELECT version, effective_from, defaults FROM perm_terms WHERE version = ?"),
            [version],
        )
        row = cursor.fetchone()
        if row is None:
            raise ViewConflictError(f"terms version {version!r} accepted before it was projected")
        return TermsVersion(row[0], row[1], orjson.loads(row[2]))

    def reset(self) -> None:
        """Empty every read-model table and set the tracking record back to position 0."""
        with self._write() as cursor:
            self._lock_position(cursor)
            for table in TABLE_NAMES:
                cursor.execute(self.sql(f"DELETE FROM {table}"))
            cursor.execute(
                self.sql(
                    f"UPDATE {self._tracking_table()} SET notification_id = 0 "
                    "WHERE application_name = ?"
                ),
                [self.tracking_name],
            )

    # ---------------------------------------------------------------------- read

    def terms(self, version: str | None = None) -> Mapping[str, TermsVersion]:
        """Return the published terms by version; reload when `version` is not yet held."""
        cache = self._terms_cache
        if version is not None and version not in cache:
            for row in self._query(
                self.sql("SELECT version, effective_from, defaults FROM perm_terms"), []
            ):
                cache.setdefault(row[0], TermsVersion(row[0], row[1], orjson.loads(row[2])))
        return cache

    def follow(self, events_table: str, position_column: str) -> None:
        """Name the ledger's events table, so that reads can tell the ledger head."""
        self.freshness = freshness_lookup(events_table, position_column)

    def evidence(
        self,
        question: Question,
        *,
        known_at_given: bool,
        tips: bool = True,
        with_head: bool = False,
    ) -> Evidence:
        """Read what the rules need to answer `question`, each read one statement (a
        snapshot): the current tips when they can answer (only "as known now": tips
        reflect every recorded fact), else each key's latest fact on the timeline, else
        also each key's latest fact not expired. `with_head` also reads, in the same
        statement, the view's position and the ledger head (`Evidence.lagging`).
        """
        key_count = len(question_keys(question.party, question.content, question.aspect))
        freshness = self.freshness if with_head else None
        if tips and not known_at_given:
            statement, params = current_query(question, known_at_given=False, freshness=freshness)
            found = read_current(self._query(self.sql(statement), params), question, key_count)
            if found is not None:
                return found
        for applicable in (False, True):
            statement, params = timeline_query(
                question, known_at_given=known_at_given, applicable=applicable, freshness=freshness
            )
            rows = self._query(self.sql(statement), params)
            evidence = read_evidence(rows, question, key_count, applicable=applicable)
            if evidence is not None:
                return evidence
        raise AssertionError("a full timeline read always returns evidence")

    def tips_for_pairs(
        self,
        purpose: str,
        parties: Sequence[str],
        pairs: Sequence[tuple[str, str]],
        *,
        known_at: int,
        known_at_given: bool,
    ) -> PairTips:
        """Read, in one statement, the tips that may answer a batch of (subject, content).

        Only aspect `all` is read (the batch filter asks about every aspect).
        """
        scoped = list(dict.fromkeys((s, scope) for s, c in pairs for scope in (c, CATALOGUE)))
        values = ", ".join(["(?, ?)"] * len(scoped))
        party_marks = ", ".join("?" * len(parties))
        position = (
            "SELECT 3, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), position, "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM (SELECT position FROM perm_clock "
            "WHERE recorded_at <= ? ORDER BY recorded_at DESC, position DESC LIMIT 1) AS p"
            if known_at_given
            else "SELECT 3, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), MAX(position), "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM perm_clock"
        )
        statement = (
            f"WITH q (subject, scope) AS (VALUES {values}) "
            "SELECT 0 AS tag, c.subject, c.party, c.scope, c.kind, c.event_id, c.effective_at, "
            "c.position, c.expires_at, CAST(NULL AS TEXT) FROM q JOIN perm_current c "
            "ON c.subject = q.subject AND c.scope = q.scope "
            f"WHERE c.purpose = ? AND c.party IN ({party_marks}) AND c.aspect = 'all' "
            "UNION ALL SELECT 1, t.subject, CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS BIGINT), t.event_id, t.effective_at, t.position, t.effective_from, "
            "t.version FROM perm_terms_current t WHERE t.subject IN (SELECT subject FROM q) "
            "UNION ALL SELECT 2, e.subject, CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS BIGINT), e.event_id, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM perm_erasures e "
            "WHERE e.subject IN (SELECT subject FROM q) AND e.recorded_at <= ? "
            f"UNION ALL {position} "
            "UNION ALL SELECT 4, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), "
            "CAST(NULL AS BIGINT), MAX(recorded_at), CAST(NULL AS TEXT) FROM perm_clock"
        )
        params: list[Any] = [value for pair in scoped for value in pair]
        params.extend([purpose, *parties, known_at])
        if known_at_given:
            params.append(known_at)
        tips = PairTips()
        for row in self._query(self.sql(statement), params):
            tag = row[0]
            if tag == 0:
                tips.facts[(row[1], row[2], row[3])] = Fact(row[4], row[5], row[6], row[7], row[8])
            elif tag == 1:
                tips.acceptances[row[1]] = (row[5], row[9], row[6], row[7], row[8])
            elif tag == 2:
                tips.erasures[row[1]] = row[5]
            elif tag == 3:
                tips.position = row[7] or 0
            else:
                tips.head_recorded_at = row[8]
        return tips

    def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        """Return up to `limit` (subject, grant event id) whose expiry is due by `now`."""
        rows = self._query(
            self.sql(
                "SELECT subject, grant_event_id FROM perm_expiries WHERE expires_at <= ? "
                "ORDER BY expires_at, grant_event_id LIMIT ?"
            ),
            [now, limit],
        )
        return [(row[0], row[1]) for row in rows]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Return every read-model table's rows in primary-key order (for comparisons)."""
        return {
            table: [
                tuple(row)
                for row in self._query(self.sql(f"SELECT * FROM {table} ORDER BY {key}"), [])
            ]
            for table, key in _TABLES
        }

    def count(self, table: str) -> int:
        """Return the number of rows in one read-model table."""
        if table not in TABLE_NAMES:
            raise ValueError(f"no read-model table {table!r}")
        return int(self._query(self.sql(f"SELECT COUNT(*) FROM {table}"), [])[0][0])


@dataclass
class PairTips:
    """What `tips_for_pairs` read: tips by (subject, party, scope), terms and erasures."""

    facts: dict[tuple[str, str, str], Fact] = field(default_factory=dict)
    acceptances: dict[str, tuple[str, str, int, int, int]] = field(default_factory=dict)
    erasures: dict[str, str] = field(default_factory=dict)
    position: int = 0
    head_recorded_at: int | None = None


class SQLitePermissionsView(PermissionsView, SQLiteTrackingRecorder):
    """The permissions view on the ledger's SQLite datastore."""

    dialect = "sqlite"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        SQLiteTrackingRecorder.__init__(self, datastore, **kwargs)
        self._terms_cache = {}
        self._readers = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    def _reader(self) -> sqlite3.Connection:
        """Return this thread's read connection.

        Reads get connections of their own because the library opens its connections
        with `cached_statements=True`, a statement cache of one, which would compile
        every lookup again; a read in WAL mode never blocks the writer.
        """
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.datastore.pool.db_name,
                uri=True,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
            self._readers.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def _query(self, statement: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return self._reader().execute(statement, params).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"the read models are unavailable: {error}") from None

    def close(self) -> None:
        """Close the read connections this view opened (the datastore is the ledger's)."""
        with self._opened_lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
        self._readers = threading.local()

    def _tracking_table(self) -> str:
        return "tracking"

    def _track(self, cursor: Any, position: int) -> None:
        self._insert_tracking(cursor, Tracking(self.tracking_name, position))

    def _create_tracking_table(self) -> None:
        SQLiteTrackingRecorder.create_table(self)


class PostgresPermissionsView(PermissionsView, PostgresTrackingRecorder):
    """The permissions view on the ledger's PostgreSQL datastore (schema-qualified)."""

    dialect = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        PostgresTrackingRecorder.__init__(self, datastore, **kwargs)
        self._terms_cache = {}
        self._statements: dict[str, str] = {}
        self._native: dict[str, str] = {}

    def sql(self, statement: str) -> str:
        """Return `statement` with `%s` placeholders and schema-qualified `perm_*` names."""
        translated = self._statements.get(statement)
        if translated is None:
            schema = f'"{self.datastore.schema}".'
            translated = _PG_TABLE.sub(lambda m: schema + m.group(0), statement.replace("?", "%s"))
            self._statements[statement] = translated
        return translated

    @contextmanager
    def _write(self) -> Iterator[Any]:
        from psycopg.rows import tuple_row

        with self.datastore.transaction(commit=True) as cursor:
            cursor.row_factory = tuple_row  # type: ignore[assignment]
            yield cursor

    def _query(self, statement: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """Run a read with native `$n` placeholders (a `RawCursor`).

        psycopg re-parses `%s` statements longer than 4096 bytes or with more than 50
        parameters on every call; the timeline lookups are both, and parsing would cost
        more than the lookups themselves. The server still prepares them after a few runs.
        """
        from psycopg import RawCursor
        from psycopg.rows import tuple_row

        native = self._native.get(statement)
        if native is None:
            pieces = statement.split("%s")
            native = pieces[0] + "".join(f"${i}{p}" for i, p in enumerate(pieces[1:], 1))
            self._native[statement] = native
        try:
            with (
                self.datastore.get_connection() as conn,
                RawCursor(conn, row_factory=tuple_row) as cursor,
            ):
                cursor.execute(native, params)
                return cast(list[Sequence[Any]], cursor.fetchall())
        except PersistenceError as error:
            raise StoreUnavailableError(f"the read models are unavailable: {error}") from None

    def _lock_ddl(self, cursor: Any) -> None:
        """Take a transaction-scoped advisory lock: concurrent `CREATE TABLE IF NOT EXISTS`
        of one table in two sessions fails on PostgreSQL's catalogue unique index.
        """
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"consent-ledger:read-models:{self.datastore.schema}"],
        )

    def _bulk(self, cursor: Any, write: BulkWrite, rows: Sequence[Sequence[Any]]) -> None:
        """Apply `write` to all `rows` in one statement over column arrays."""
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            # Binary parameters: dumping arrays as text quotes every element in Python.
            cursor.execute(self.sql(write.setwise()).replace("%s", "%b"), columns)

    def _tracking_table(self) -> str:
        return f'"{self.datastore.schema}"."{self.tracking_table_name}"'

    def _track(self, cursor: Any, position: int) -> None:
        self._insert_tracking(cursor, Tracking(self.tracking_name, position))

    def _create_tracking_table(self) -> None:
        PostgresTrackingRecorder.create_table(self)


class ReadModel:
    """Open the permissions view on first use, on the ledger's own datastore.

    Construction does no I/O (bootstrap stays fast); the first `view` creates the tables.
    """

    def __init__(self, ledger: ConsentLedger) -> None:
        self.ledger = ledger
        self._view: PermissionsView | None = None
        self._lock = threading.Lock()

    @property
    def view(self) -> PermissionsView:
        """Return the view, creating its tables and tracking row the first time."""
        if self._view is None:
            with self._lock:
                if self._view is None:
                    self._view = self._open()
        return self._view

    def close(self) -> None:
        """Close the view's own connections, if it was opened."""
        if self._view is not None:
            self._view.close()

    def _open(self) -> PermissionsView:
        try:
            return self._construct()
        except IntegrityError:
            # Another process created the library's tracking table at the same moment.
            return self._construct()

    def _construct(self) -> PermissionsView:
        factory = self.ledger.factory
        view: PermissionsView
        try:
            # The factory names the tracking table as the ledger's own recorders expect.
            if isinstance(factory, SQLiteFactory):
                view = cast(SQLitePermissionsView, factory.tracking_recorder(SQLitePermissionsView))
            elif isinstance(factory, PostgresFactory):
                view = factory.tracking_recorder(PostgresPermissionsView)
            else:
                raise TypeError(f"no permissions view for {type(factory).__name__}")
            name = f"{self.ledger.name}:permissions"
            if view.tracking_name != name or not factory.env_create_table():
                view.tracking_name = name
                view.create_table()
            events = self.ledger.recorder.events_table_name  # type: ignore[attr-defined]
            if isinstance(view, PostgresPermissionsView):
                view.follow(f'"{view.datastore.schema}"."{events}"', "notification_id")
            else:
                view.follow(events, "rowid")
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"the read models are unavailable: {error}") from None
        return view
