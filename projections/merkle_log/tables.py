"""The log's tables and its tracking row: the base every part of LogService shares.

- ``merkle_leaves(leaf_index PK, position UNIQUE, event_id, leaf_hash)``: level 0 of
  the tree, with the ledger position and event id of each leaf;
- ``merkle_nodes(level, idx, hash, PK(level, idx))``: every *perfect* interior
  subtree (level >= 1), written once when its last leaf arrives (``ledger.merkle.tree``);
- ``checkpoints(tree_size PK, root_hash, timestamp, log_id, signature, public_key,
  note)``: the signed tree heads, in both encodings;
- ``merkle_tracking(id = 1, position, tree_size)``: how far the log has read the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from projections.database import Cursor, Database
from projections.merkle_log.types import LogNotReadyError

__all__ = ["LogTables"]


class LogTables:
    """Open transactions on the log's tables, creating them on first use."""

    database: Database
    _tables_ready: bool

    def create_tables(self) -> None:
        """Create the log's tables and its tracking row if they do not exist."""
        blob, big = (
            ("BYTEA", "BIGINT") if self.database.dialect == "postgres" else ("BLOB", "INTEGER")
        )
        statements = [
            "CREATE TABLE IF NOT EXISTS merkle_leaves ("
            f" leaf_index {big} PRIMARY KEY, position {big} NOT NULL UNIQUE,"
            f" event_id TEXT NOT NULL, leaf_hash {blob} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_nodes ("
            f" level INTEGER NOT NULL, idx {big} NOT NULL, hash {blob} NOT NULL,"
            " PRIMARY KEY (level, idx))"
            + (" WITHOUT ROWID" if self.database.dialect == "sqlite" else ""),
            "CREATE TABLE IF NOT EXISTS checkpoints ("
            f" tree_size {big} PRIMARY KEY, root_hash {blob} NOT NULL,"
            " timestamp TEXT NOT NULL, log_id TEXT NOT NULL,"
            f" signature {blob} NOT NULL, public_key {blob} NOT NULL, note TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_tracking ("
            f" id INTEGER PRIMARY KEY CHECK (id = 1), position {big} NOT NULL,"
            f" tree_size {big} NOT NULL)",
            "INSERT INTO merkle_tracking (id, position, tree_size) VALUES (1, 0, 0)"
            " ON CONFLICT (id) DO NOTHING",
        ]
        self.database.create_tables("merkle_log", statements)
        self._tables_ready = True

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """Open a transaction on the ledger database, creating the tables on first use."""
        if not self._tables_ready:
            self.create_tables()
        with self.database.transaction() as cursor:
            yield cursor

    def tracking(self) -> tuple[int, int]:
        """Return (last ledger position logged, tree size): how far the log has read."""
        with self._transaction() as cursor:
            return self._tracking(cursor, lock=False)

    def tree_size(self) -> int:
        """Return the number of leaves logged so far."""
        return self.tracking()[1]

    def _tracking(self, cursor: Cursor, *, lock: bool) -> tuple[int, int]:
        """Read the tracking row; with lock, hold it until the transaction ends (PostgreSQL)."""
        suffix = " FOR UPDATE" if lock and self.database.dialect == "postgres" else ""
        cursor.execute(f"SELECT position, tree_size FROM merkle_tracking WHERE id = 1{suffix}")
        row = cursor.fetchone()
        if row is None:
            raise LogNotReadyError("the log's tables are not created (merkle_tracking is empty)")
        return int(row[0]), int(row[1])

    def _sql(self, statement: str) -> str:
        """Return a statement with `?` placeholders in the database's dialect."""
        return self.database.sql(statement)
