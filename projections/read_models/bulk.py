"""The statements that write the read models, each written once for both dialects.

A `BulkWrite` is an insert (or upsert) or a delete by key applied to many rows: SQLite
runs it row by row (`executemany`, in-process), PostgreSQL as one statement over column
arrays (`unnest`), because a round trip per row would cost more than the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "DELETE_EXPIRY",
    "INSERT_ACCEPTANCE",
    "INSERT_CLOCK",
    "INSERT_EXPIRY",
    "INSERT_FACT",
    "INSERT_TERMS",
    "KEY_MATCH",
    "RECOMPUTE_TERMS_TIP",
    "RECOMPUTE_TIP",
    "UPSERT_TERMS_TIP",
    "UPSERT_TIP",
    "BulkWrite",
]


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


# The model and conditions columns (BRIEF §2.1) come last, after the columns of §2.
_KEY: Final = ("subject", "purpose", "party", "scope", "aspect")
_KEY_TYPES: Final = ("text",) * 5
INSERT_FACT: Final = BulkWrite(
    "perm_facts",
    (*_KEY, "effective_at", "position", "kind", "event_id", "recorded_at", "expires_at",
     "voided_at", "model", "conditions"),
    (*_KEY_TYPES, "bigint", "bigint", "smallint", "text", "bigint", "bigint", "bigint",
     "text", "text"),
)  # fmt: skip
_TIP_COLUMNS: Final = (
    *_KEY, "effective_at", "position", "kind", "event_id", "expires_at", "model", "conditions",
)  # fmt: skip
TIP_MODEL: Final = _TIP_COLUMNS.index("model")
"""Index of the model in a tip row (the key is the first five columns and the model)."""
# A tip only moves forward: an upsert replaces it only with a later fact.
UPSERT_TIP: Final = BulkWrite(
    "perm_current",
    _TIP_COLUMNS,
    (*_KEY_TYPES, "bigint", "bigint", "smallint", "text", "bigint", "text", "text"),
    "ON CONFLICT (subject, purpose, party, scope, aspect, model) DO UPDATE SET "
    "effective_at = excluded.effective_at, position = excluded.position, "
    "kind = excluded.kind, event_id = excluded.event_id, expires_at = excluded.expires_at, "
    "conditions = excluded.conditions "
    "WHERE (excluded.effective_at, excluded.position) > (c.effective_at, c.position)",
)
KEY_COLUMNS: Final = "subject, purpose, party, scope, aspect, model"
KEY_MATCH: Final = (
    "subject = ? AND purpose = ? AND party = ? AND scope = ? AND aspect = ? AND model = ?"
)
RECOMPUTE_TIP: Final = (
    f"INSERT INTO perm_current ({', '.join(_TIP_COLUMNS)}) SELECT {', '.join(_TIP_COLUMNS)} "
    f"FROM perm_facts WHERE {KEY_MATCH} AND voided_at IS NULL "
    "ORDER BY effective_at DESC, position DESC LIMIT 1"
)
INSERT_ACCEPTANCE: Final = BulkWrite(
    "perm_acceptances",
    ("subject", "effective_at", "position", "event_id", "version", "effective_from",
     "recorded_at", "voided_at"),
    ("text", "bigint", "bigint", "text", "text", "bigint", "bigint", "bigint"),
)  # fmt: skip
_TERMS_TIP_COLUMNS: Final = (
    "subject", "effective_at", "position", "event_id", "version", "effective_from",
)  # fmt: skip
UPSERT_TERMS_TIP: Final = BulkWrite(
    "perm_terms_current",
    _TERMS_TIP_COLUMNS,
    ("text", "bigint", "bigint", "text", "text", "bigint"),
    "ON CONFLICT (subject) DO UPDATE SET effective_at = excluded.effective_at, "
    "position = excluded.position, event_id = excluded.event_id, version = excluded.version, "
    "effective_from = excluded.effective_from "
    "WHERE (excluded.effective_at, excluded.position) > (c.effective_at, c.position)",
)
RECOMPUTE_TERMS_TIP: Final = (
    f"INSERT INTO perm_terms_current ({', '.join(_TERMS_TIP_COLUMNS)}) "
    f"SELECT {', '.join(_TERMS_TIP_COLUMNS)} FROM perm_acceptances "
    "WHERE subject = ? AND voided_at IS NULL ORDER BY effective_at DESC, position DESC LIMIT 1"
)
INSERT_TERMS: Final = BulkWrite(
    "perm_terms",
    ("version", "effective_from", "position", "defaults"),
    ("text", "bigint", "bigint", "text"),
)
INSERT_CLOCK: Final = BulkWrite("perm_clock", ("position", "recorded_at"), ("bigint", "bigint"))
INSERT_EXPIRY: Final = BulkWrite(
    "perm_expiries", ("grant_event_id", "subject", "expires_at"), ("text", "text", "bigint")
)
DELETE_EXPIRY: Final = BulkWrite("perm_expiries", ("grant_event_id",), ("text",), delete=True)
INSERT_REGISTRATION: Final = BulkWrite(
    "perm_registrations",
    ("content_id", "effective_at", "position", "owner", "event_id", "contributors",
     "recorded_at", "voided_at"),
    ("text", "bigint", "bigint", "text", "text", "text", "bigint", "bigint"),
)  # fmt: skip
