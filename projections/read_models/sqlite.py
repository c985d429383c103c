"""The permissions view on the ledger's SQLite datastore."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.database import translate_driver_errors
from projections.read_models.schema import INDEXES, SHADOW_SUFFIX, TABLE_NAMES, index_ddl
from projections.read_models.view import READ_MODELS, PermissionsView

__all__ = ["SQLitePermissionsView"]


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
        with translate_driver_errors(READ_MODELS):
            return self._reader().execute(statement, params).fetchall()

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

    def _swap_tables(self, cursor: Any) -> None:
        """Rename the shadow tables into place; rebuild the indexes under their own names.

        SQLite cannot rename an index, and an index keeps its name when its table is
        renamed: the shadow's indexes are dropped and the live ones built afresh, inside
        the swap's transaction (readers, in WAL mode, keep reading the old tables).
        """
        for table in TABLE_NAMES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"ALTER TABLE {table}{SHADOW_SUFFIX} RENAME TO {table}")
        for name, _, _ in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}{SHADOW_SUFFIX}")
        for statement in index_ddl():
            cursor.execute(statement)
