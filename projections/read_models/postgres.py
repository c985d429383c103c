"""The permissions view on the ledger's PostgreSQL datastore (schema-qualified)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder

from projections.database import placeholders, translate_driver_errors
from projections.read_models.bulk import BulkWrite
from projections.read_models.schema import INDEXES, SHADOW_SUFFIX, TABLE_NAMES, TABLE_PATTERN
from projections.read_models.view import READ_MODELS, PermissionsView

__all__ = ["PostgresPermissionsView"]


class PostgresPermissionsView(PermissionsView, PostgresTrackingRecorder):
    """The permissions view on the ledger's PostgreSQL datastore (schema-qualified)."""

    dialect = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        PostgresTrackingRecorder.__init__(self, datastore, **kwargs)
        self._terms_cache = {}
        self._statements: dict[str, str] = {}
        self._native: dict[str, str] = {}

    def _translate(self, statement: str) -> str:
        """Return `statement` with `%s` placeholders and schema-qualified `perm_*` names."""
        translated = self._statements.get(statement)
        if translated is None:
            schema = f'"{self.datastore.schema}".'
            translated = TABLE_PATTERN.sub(
                lambda m: schema + m.group(0), placeholders(self.dialect, statement)
            )
            self._statements[statement] = translated
        return translated

    def _schema(self) -> str:
        return str(self.datastore.schema)

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
        with (
            translate_driver_errors(READ_MODELS),
            self.datastore.get_connection() as conn,
            RawCursor(conn, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(native, params)
            return cast(list[Sequence[Any]], cursor.fetchall())

    def bulk(self, cursor: Any, write: BulkWrite, rows: Sequence[Sequence[Any]]) -> None:
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

    def _swap_tables(self, cursor: Any) -> None:
        """Drop the live tables, rename the shadow tables and their indexes into place."""
        schema = f'"{self.datastore.schema}"'
        for table in TABLE_NAMES:
            shadow = f"{table}{SHADOW_SUFFIX}"
            cursor.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
            cursor.execute(f"ALTER TABLE {schema}.{shadow} RENAME TO {table}")
            cursor.execute(f"ALTER INDEX IF EXISTS {schema}.{shadow}_pkey RENAME TO {table}_pkey")
        for name, _, _ in INDEXES:
            cursor.execute(f"ALTER INDEX IF EXISTS {schema}.{name}{SHADOW_SUFFIX} RENAME TO {name}")
