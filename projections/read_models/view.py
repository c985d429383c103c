# long module: the view's lifecycle and every read it answers, one class per dialect apart
"""The permissions read models in SQL, kept by an `eventsourcing` tracking recorder.

`PermissionsView` is a `TrackingRecorder` of the `eventsourcing` library (SQLite or
PostgreSQL flavour, on the ledger's own datastore) that also owns the read-model tables
(`perm_*`). `apply` writes one batch of ledger entries into every table *and* the
tracking record in one transaction: a crash at any point leaves both as they were before
the batch, and a batch is applied only if the tracking record still holds the position
it was read after, so no event is ever applied twice. Its tracking row is named
`<ledger>:permissions` so that other views in the same database keep rows of their own.

A rebuild fills shadow copies of the tables through a second view (`shadow`, tracking
row `<ledger>:permissions:rebuild`) and `swap_in` replaces the live tables with them
and moves the tracking record in one transaction, so readers see the old tables or the
new ones, never an empty window.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import orjson
from eventsourcing.persistence import TrackingRecorder

from ledger.decisions import NO_MODEL, Question, Registration, keys_of
from ledger.events import Entry
from projections.database import translate_driver_errors
from projections.permissions import TermsVersion, current_query, read_current
from projections.read_models.bulk import BulkWrite
from projections.read_models.pair_tips import (
    PairTips,
    pair_tips_query,
    purposes_tips_query,
    read_pair_tips,
    read_purposes_tips,
)
from projections.read_models.schema import (
    SHADOW_SUFFIX,
    TABLE_NAMES,
    TABLES,
    index_ddl,
    shadow_name,
    table_ddl,
)
from projections.read_models.writer import ViewConflictError, write_entries
from projections.timeline import (
    REGISTRATION_LOOKUP,
    TAG_REGISTRATION,
    Evidence,
    freshness_lookup,
    read_evidence,
    timeline_query,
    to_micros,
)

__all__ = ["PermissionsView", "ViewConflictError", "registration_from"]

READ_MODELS = "the read models are unavailable"  # how an outage is reported


class PermissionsView(TrackingRecorder):
    """The permissions read models and their tracking record (one dialect per subclass)."""

    dialect: str = ""
    tracking_name: str = "ConsentLedger:permissions"
    freshness: str | None = None  # the lookup of the ledger head (see `follow`)
    head_statement: str | None = None  # the ledger head alone (see `ledger_head`)
    shadow_of: PermissionsView | None = None  # the live view, when this one is its shadow
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

    def _schema(self) -> str:
        """Return the schema the tables live in (the DDL lock's scope)."""
        return "main"

    def _swap_tables(self, cursor: Any) -> None:
        """Drop the live tables and rename the shadow copies into their place."""
        raise NotImplementedError

    def bulk(self, cursor: Any, write: BulkWrite, rows: Sequence[Sequence[Any]]) -> None:
        """Apply `write` to `rows` inside the caller's transaction (row by row here)."""
        if rows:
            cursor.executemany(self.sql(write.rowwise()), rows)

    def _translate(self, statement: str) -> str:
        """Return a bare-named `?` statement in this dialect (placeholders, qualified names)."""
        return statement

    # ------------------------------------------------------------------- set-up

    def sql(self, statement: str) -> str:
        """Return `statement` in this dialect, on this view's tables (live or shadow)."""
        if self.shadow_of is not None:
            statement = shadow_name(statement)
        return self._translate(statement)

    def ddl(self) -> list[str]:
        """Return the statements that create the read-model tables (idempotent)."""
        suffix = SHADOW_SUFFIX if self.shadow_of is not None else ""
        return [self.sql(s) for s in table_ddl(self.dialect)] + [
            self.sql(s) for s in index_ddl(suffix)
        ]

    def create_table(self) -> None:
        """Create the tracking table, the read-model tables and this view's tracking row."""
        self._create_tracking_table()
        with self._write() as cursor:
            self._lock_ddl(cursor)
            for statement in self.ddl():
                cursor.execute(statement)
            cursor.execute(
                self._translate(
                    f"SELECT notification_id FROM {self._tracking_table()} "
                    "WHERE application_name = ?"
                ),
                [self.tracking_name],
            )
            if cursor.fetchone() is None:
                cursor.execute(
                    self._translate(
                        f"INSERT INTO {self._tracking_table()} "
                        "(application_name, notification_id) VALUES (?, ?) "
                        "ON CONFLICT (application_name) DO NOTHING"
                    ),
                    [self.tracking_name, 0],
                )

    def _lock_ddl(self, cursor: Any) -> None:
        """Serialise this view's DDL with other processes' (projections.database.lock_ddl)."""
        from projections.database import lock_ddl

        lock_ddl(cursor, self.dialect, self._schema(), "read-models")

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
            self._translate(
                f"UPDATE {self._tracking_table()} SET notification_id = notification_id "
                "WHERE application_name = ? RETURNING notification_id"
            ),
            [self.tracking_name],
        )
        row = cursor.fetchone()
        if row is None:
            raise ViewConflictError(f"tracking row {self.tracking_name!r} is missing")
        return int(row[0])

    def _set_position(self, cursor: Any, position: int) -> None:
        """Set this view's tracking record to `position` (it may move back) in the transaction."""
        cursor.execute(
            self._translate(
                f"UPDATE {self._tracking_table()} SET notification_id = ? "
                "WHERE application_name = ?"
            ),
            [position, self.tracking_name],
        )

    # --------------------------------------------------------------------- write

    def apply(self, entries: Sequence[Entry], *, after: int) -> int:
        """Apply `entries` (ledger order, all after position `after`) in one transaction.

        Writes every read-model row and advances the tracking record to the last entry's
        position, atomically. Raises ViewConflictError, writing nothing, if the view's
        position is no longer `after` (another projector got there first).
        """
        if not entries:
            return after
        terms = dict(self._terms_cache)
        with translate_driver_errors(READ_MODELS), self._write() as cursor:
            held = self._lock_position(cursor)
            if held != after:
                raise ViewConflictError(
                    f"view {self.tracking_name!r} is at position {held}, not {after}"
                )
            self._write_entries(cursor, entries, terms)
            self._track(cursor, entries[-1].position)
        self._terms_cache.update(terms)
        return entries[-1].position

    def _write_entries(
        self, cursor: Any, entries: Sequence[Entry], terms: dict[str, TermsVersion]
    ) -> None:
        """Write the rows of `entries` in the caller's transaction (a seam for fault tests)."""
        write_entries(self, cursor, entries, terms)

    # ------------------------------------------------------------------ rebuild

    def shadow(self) -> PermissionsView:
        """Return an empty view over fresh shadow copies of the tables, at position 0.

        Drops what an interrupted rebuild left behind. The shadow shares this view's
        datastore; its tracking row is `<tracking name>:rebuild`. Run one rebuild at a
        time: a second one empties the shadow the first is filling (the live tables
        stay untouched either way, and the swap checks the shadow's position).
        """
        shadow = copy.copy(self)
        shadow.shadow_of = self
        shadow.tracking_name = f"{self.tracking_name}:rebuild"
        shadow._terms_cache = {}
        with translate_driver_errors(READ_MODELS), self._write() as cursor:
            self._lock_ddl(cursor)
            for table in TABLE_NAMES:
                cursor.execute(shadow.sql(f"DROP TABLE IF EXISTS {table}"))
        shadow.create_table()
        with translate_driver_errors(READ_MODELS), self._write() as cursor:
            shadow._set_position(cursor, 0)
        return shadow

    def swap_in(self, shadow: PermissionsView) -> bool:
        """Replace the live tables by `shadow`'s and take its position, in one transaction.

        Returns False, changing nothing, when the live view has moved past the shadow
        (a worker applied events meanwhile): catch the shadow up and call again.
        """
        with translate_driver_errors(READ_MODELS), self._write() as cursor:
            live = self._lock_position(cursor)
            rebuilt = shadow._lock_position(cursor)
            if rebuilt < live:
                return False
            self._lock_ddl(cursor)
            self._swap_tables(cursor)
            self._set_position(cursor, rebuilt)
            cursor.execute(
                self._translate(f"DELETE FROM {self._tracking_table()} WHERE application_name = ?"),
                [shadow.tracking_name],
            )
        # Terms are append-only: the rebuilt ones equal the held ones, so readers sharing
        # the cache keep every version they had (never clear it under them).
        self._terms_cache.update(shadow._terms_cache)
        return True

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
        self.head_statement = f"SELECT MAX({position_column}) FROM {events_table}"

    def ledger_head(self) -> int:
        """Return the ledger's head (its highest position, 0 if empty): one indexed read
        on this view's own connection, cheaper than the ledger's pooled one."""
        if self.head_statement is None:
            raise AssertionError("ledger_head() needs follow() first")
        return int(self._query(self.head_statement, [])[0][0] or 0)

    def evidence(
        self,
        question: Question,
        *,
        known_at_given: bool,
        tips: bool = True,
        with_head: bool = False,
        with_registration: bool = False,
    ) -> Evidence:
        """Read what the rules need to answer `question`, each read one statement (a
        snapshot): the current tips when they can answer (only "as known now": tips
        reflect every recorded fact), else each key's latest fact on the timeline, else
        also each key's latest fact not expired. `with_head` also reads, in the same
        statement, the view's position and the ledger head (`Evidence.lagging`);
        `with_registration` the registration in force of the question's content.
        """
        key_count = len(keys_of(question))
        freshness = self.freshness if with_head else None
        extra: list[Any] = []
        if with_registration and question.content is not None:
            at, known_at = to_micros(question.at), to_micros(question.known_at)
            extra = [question.content, at, known_at, known_at]
        found: Evidence | None = None
        rows: list[Sequence[Any]] = []
        if tips and not known_at_given:
            statement, params = current_query(question, known_at_given=False, freshness=freshness)
            rows = self._query(*self._with_registration(statement, params, extra))
            found = read_current(rows, question, key_count)
        if found is None:
            for applicable in (False, True):
                statement, params = timeline_query(
                    question,
                    known_at_given=known_at_given,
                    applicable=applicable,
                    freshness=freshness,
                )
                rows = self._query(*self._with_registration(statement, params, extra))
                found = read_evidence(rows, question, key_count, applicable=applicable)
                if found is not None:
                    break
        if found is None:
            raise AssertionError("a full timeline read always returns evidence")
        if not extra:
            return found
        registration = next(((row[2], row[6]) for row in rows if row[0] == TAG_REGISTRATION), None)
        return replace(found, registration=registration, registration_read=True)

    def _with_registration(
        self, statement: str, params: list[Any], extra: list[Any]
    ) -> tuple[str, list[Any]]:
        """Return a statement (in this dialect) that also reads the registration lookup."""
        if extra:
            return self.sql(f"{statement} UNION ALL {REGISTRATION_LOOKUP}"), [*params, *extra]
        return self.sql(statement), params

    def registration(self, content: str, *, at: int, known_at: int) -> Registration | None:
        """Return the registration of `content` in force at `at` as known at `known_at`."""
        return self.registrations([content], at=at, known_at=known_at).get(content)

    def registrations(
        self, contents: Sequence[str], *, at: int, known_at: int
    ) -> dict[str, Registration]:
        """Return the registrations in force of those `contents` that have one (one read)."""
        if not contents:
            return {}
        marks = ", ".join("?" * len(contents))
        rows = self._query(
            self.sql(
                "SELECT content_id, owner, contributors, effective_at, position "
                f"FROM perm_registrations WHERE content_id IN ({marks}) AND effective_at <= ? "
                "AND recorded_at <= ? AND (voided_at IS NULL OR voided_at > ?)"
            ),
            [*contents, at, known_at, known_at],
        )
        latest: dict[str, Sequence[Any]] = {}
        for row in rows:
            held = latest.get(row[0])
            if held is None or (row[3], row[4]) > (held[3], held[4]):
                latest[row[0]] = row
        return {c: registration_from(c, row[1], row[2]) for c, row in latest.items()}

    def contributed_contents(self, *, at: int) -> dict[str, list[str]]:
        """Return, by owner, the contents whose registration in force now names
        contributors (the AI signals' site-wide scan asks them, BRIEF §2.1)."""
        rows = self._query(
            self.sql(
                "SELECT content_id, owner, contributors, effective_at, position "
                "FROM perm_registrations WHERE effective_at <= ? AND recorded_at <= ? "
                "AND (voided_at IS NULL OR voided_at > ?)"
            ),
            [at, at, at],
        )
        latest: dict[str, Sequence[Any]] = {}
        for row in rows:
            held = latest.get(row[0])
            if held is None or (row[3], row[4]) > (held[3], held[4]):
                latest[row[0]] = row
        owners: dict[str, list[str]] = {}
        for content, row in sorted(latest.items()):
            if registration_from(content, row[1], row[2]).contributors:
                owners.setdefault(str(row[1]), []).append(content)
        return owners

    def tips_for_pairs(
        self,
        purpose: str,
        parties: Sequence[str],
        pairs: Sequence[tuple[str, str]],
        *,
        known_at: int,
        known_at_given: bool,
        model: str | None = None,
    ) -> PairTips:
        """Read, in one statement, the tips that may answer a batch of (subject, content).

        Only aspect `all` is read (the batch filter asks about every aspect).
        """
        statement, params = pair_tips_query(
            purpose, parties, pairs, known_at=known_at, known_at_given=known_at_given, model=model
        )
        return read_pair_tips(self._query(self.sql(statement), params))

    def tips_for_purposes(
        self,
        purposes: Sequence[str],
        parties: Sequence[str],
        pairs: Sequence[tuple[str, str | None]],
        *,
        known_at: int,
        known_at_given: bool,
    ) -> dict[str, PairTips]:
        """Read, in one statement, the tips of several purposes for (subject, content) pairs.

        A pair with content None asks about the catalogue. Only aspect `all` is read.
        """
        statement, params = purposes_tips_query(
            purposes, parties, pairs, known_at=known_at, known_at_given=known_at_given
        )
        return read_purposes_tips(self._query(self.sql(statement), params), purposes)

    def scan_tips(
        self,
        purposes: Sequence[str],
        party: str,
        *,
        after: tuple[str, str, str] | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Return up to `limit` model-less tips of `party` (aspect `all`) for `purposes`,
        in key order (a question without a model reads only those, BRIEF §2.1).

        Rows are (subject, purpose, scope, kind, event_id, effective_at, position,
        expires_at, erasure event id or None, conditions), ordered by the primary key;
        `after` is the (subject, purpose, scope) of the previous page's last row. Each page
        is one range read of the primary key, so a scan of every subject holds one page at
        a time.
        """
        marks = ", ".join("?" * len(purposes))
        keyset = (
            ""
            if after is None
            else " AND (c.subject, c.purpose, c.party, c.scope, c.aspect) > (?, ?, ?, ?, ?)"
        )
        statement = (
            "SELECT c.subject, c.purpose, c.scope, c.kind, c.event_id, c.effective_at, "
            "c.position, c.expires_at, e.event_id, c.conditions FROM perm_current c "
            "LEFT JOIN perm_erasures e ON e.subject = c.subject "
            f"WHERE c.party = ? AND c.aspect = 'all' AND c.model = ? AND c.purpose IN ({marks})"
            f"{keyset} "
            "ORDER BY c.subject, c.purpose, c.party, c.scope, c.aspect LIMIT ?"
        )
        keys = () if after is None else (after[0], after[1], party, after[2], "all")
        params: list[Any] = [party, NO_MODEL, *purposes, *keys, limit]
        return [tuple(row) for row in self._query(self.sql(statement), params)]

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

    def subjects(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """Return up to `limit` subjects with events whose id starts with `prefix` and
        sorts after `after`, in the database's order of ids."""
        rows = self._query(
            self.sql(
                "SELECT subject FROM (SELECT subject FROM perm_facts UNION "
                "SELECT subject FROM perm_acceptances UNION SELECT subject FROM perm_erasures) "
                "AS s WHERE SUBSTR(subject, 1, ?) = ? AND (? = 0 OR subject > ?) "
                "ORDER BY subject LIMIT ?"
            ),
            [len(prefix), prefix, 0 if after is None else 1, after or "", limit],
        )
        return [row[0] for row in rows]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Return every read-model table's rows in primary-key order (for comparisons)."""
        return {
            table: [
                tuple(row)
                for row in self._query(self.sql(f"SELECT * FROM {table} ORDER BY {key}"), [])
            ]
            for table, key in TABLES
        }

    def count(self, table: str) -> int:
        """Return the number of rows in one read-model table."""
        if table not in TABLE_NAMES:
            raise ValueError(f"no read-model table {table!r}")
        return int(self._query(self.sql(f"SELECT COUNT(*) FROM {table}"), [])[0][0])


def registration_from(content: str, owner: str, contributors: str) -> Registration:
    """Return a registration from its `perm_registrations` columns."""
    return Registration(
        content,
        owner,
        tuple((c["subject"], tuple(c["aspects"])) for c in orjson.loads(contributors)),
    )
