"""The permissions read-model tables: names, DDL and the shadow copies a rebuild fills.

Statements are written once with bare `perm_*` names; the dialect classes qualify them
(PostgreSQL schema) and a shadow view maps them to `perm_*__shadow` (see `shadow_name`),
so a rebuild runs the very statements the live projection runs, into other tables.
"""

from __future__ import annotations

import re
from typing import Final

TABLES: Final = (
    # table, primary key (also the order of a dump)
    ("perm_facts", "subject, purpose, party, scope, aspect, model, effective_at, position"),
    ("perm_current", "subject, purpose, party, scope, aspect, model"),
    ("perm_acceptances", "subject, effective_at, position"),
    ("perm_terms_current", "subject"),
    ("perm_terms", "version"),
    ("perm_erasures", "subject"),
    ("perm_clock", "position"),
    ("perm_expiries", "grant_event_id"),
    ("perm_registrations", "content_id, effective_at, position"),
)
TABLE_NAMES: Final = tuple(name for name, _ in TABLES)

SHADOW_SUFFIX: Final = "__shadow"
"""Suffix of the tables a rebuild fills before it swaps them in."""

TABLE_PATTERN: Final = re.compile(r"\bperm_\w+")
"""A read-model table name inside a statement (index names `ix_perm_…` do not match)."""

TABLE_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS perm_facts ("
    " subject TEXT NOT NULL, purpose TEXT NOT NULL, party TEXT NOT NULL,"
    " scope TEXT NOT NULL, aspect TEXT NOT NULL,"
    " effective_at BIGINT NOT NULL, position BIGINT NOT NULL, kind SMALLINT NOT NULL,"
    " event_id TEXT NOT NULL, recorded_at BIGINT NOT NULL, expires_at BIGINT, voided_at BIGINT,"
    " model TEXT NOT NULL, conditions TEXT,"
    " PRIMARY KEY (subject, purpose, party, scope, aspect, model, effective_at, position)){rowid}",
    "CREATE TABLE IF NOT EXISTS perm_current ("
    " subject TEXT NOT NULL, purpose TEXT NOT NULL, party TEXT NOT NULL,"
    " scope TEXT NOT NULL, aspect TEXT NOT NULL,"
    " effective_at BIGINT NOT NULL, position BIGINT NOT NULL, kind SMALLINT NOT NULL,"
    " event_id TEXT NOT NULL, expires_at BIGINT, model TEXT NOT NULL, conditions TEXT,"
    " PRIMARY KEY (subject, purpose, party, scope, aspect, model)){rowid}",
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
    "CREATE TABLE IF NOT EXISTS perm_expiries ("
    " grant_event_id TEXT NOT NULL PRIMARY KEY, subject TEXT NOT NULL,"
    " expires_at BIGINT NOT NULL){rowid}",
    # BRIEF §2.1: every registration of a content, bitemporal like the facts.
    "CREATE TABLE IF NOT EXISTS perm_registrations ("
    " content_id TEXT NOT NULL, effective_at BIGINT NOT NULL, position BIGINT NOT NULL,"
    " owner TEXT NOT NULL, event_id TEXT NOT NULL, contributors TEXT NOT NULL,"
    " recorded_at BIGINT NOT NULL, voided_at BIGINT,"
    " PRIMARY KEY (content_id, effective_at, position)){rowid}",
)

INDEXES: Final = (
    # index name, table, columns
    ("ix_perm_clock_recorded", "perm_clock", "recorded_at, position"),
    ("ix_perm_expiries_due", "perm_expiries", "expires_at"),
    ("ix_perm_expiries_subject", "perm_expiries", "subject"),
    ("ix_perm_registrations_owner", "perm_registrations", "owner"),
)


def table_ddl(dialect: str) -> list[str]:
    """Return the idempotent CREATE TABLE statements (bare names) for `dialect`."""
    rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    return [statement.replace("{rowid}", rowid) for statement in TABLE_DDL]


def index_ddl(suffix: str = "") -> list[str]:
    """Return the CREATE INDEX statements; `suffix` names the indexes of a shadow copy."""
    return [
        f"CREATE INDEX IF NOT EXISTS {name}{suffix} ON {table} ({columns})"
        for name, table, columns in INDEXES
    ]


def shadow_name(statement: str) -> str:
    """Return `statement` with every read-model table renamed to its shadow copy."""
    return TABLE_PATTERN.sub(lambda match: match.group(0) + SHADOW_SUFFIX, statement)
