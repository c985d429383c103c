"""The permissions view on the ledger's PostgreSQL datastore (schema-qualified)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, cast

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder

from projections.database import placeholders, translate_driver_errors
from projections.read_models.bulk import BulkWrite
from projections.read_models.schema import INDEXES, SHADOW_SUFFIX, TABLE_NAMES, TABLE_PATTERN
from projections.read_models.view import READ_MODELS, PermissionsView

__all__ = ["PostgresPermissionsView"]

READ_POOL_SIZE: Final = 3  # most connections of a view's own read pool (opened as reads need them)
READ_POOL_IDLE_SECONDS: Final = 60.0  # a read connection beyond the first idle this long closes


def read_pool_name(schema: str) -> str:
    """Return the `application_name` of a view's read connections (pg_stat_activity)."""
    return f"consent-ledger reads {schema}"[:63]


class PostgresPermissionsView(PermissionsView, PostgresTrackingRecorder):
    """The permissions view on the ledger's PostgreSQL datastore (schema-qualified)."""

    dialect = "postgres"

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        PostgresTrackingRecorder.__init__(self, datastore, **kwargs)
        self._terms_cache = {}
        self._statements: dict[str, str] = {}
        self._native: dict[str, str] = {}
        self._read_pool: Any = None
        self._read_pool_lock = threading.Lock()

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
        """Run a read with native `$n` placeholders (a `RawCursor`), one round trip.

        psycopg re-parses `%s` statements longer than 4096 bytes or with more than 50
        parameters on every call; the timeline lookups are both, and parsing would cost
        more than the lookups themselves. The server still prepares them after a few runs.

        Reads use the view's own pool, which does not ping a connection before lending
        it (the datastore's pool does, a second round trip per read, measured as half
        a check's database time): a read that fails on a connection the server dropped
        has the pool check its idle connections and runs once more (a read is safe to
        repeat).
        """
        import psycopg

        native = self._native.get(statement)
        if native is None:
            pieces = statement.split("%s")
            native = pieces[0] + "".join(f"${i}{p}" for i, p in enumerate(pieces[1:], 1))
            self._native[statement] = native
        with translate_driver_errors(READ_MODELS):
            pool = self._reads()
            try:
                return self._read(pool, native, params)
            except psycopg.OperationalError:
                pool.check()
                return self._read(pool, native, params)

    @staticmethod
    def _read(pool: Any, native: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        from psycopg import RawCursor
        from psycopg.rows import tuple_row

        with pool.connection() as conn, RawCursor(conn, row_factory=tuple_row) as cursor:
            cursor.execute(native, params)
            return cast(list[Sequence[Any]], cursor.fetchall())

    def _reads(self) -> Any:
        """Return the view's read pool (autocommit connections like the datastore's); a
        shadow reads through its live view's, which closes it."""
        if isinstance(self.shadow_of, PostgresPermissionsView):
            return self.shadow_of._reads()
        if self._read_pool is None:
            with self._read_pool_lock:
                if self._read_pool is None:
                    from psycopg_pool import ConnectionPool

                    source = self.datastore.pool
                    kwargs = cast(dict[str, Any], source.kwargs)  # given as a dict
                    self._read_pool = ConnectionPool(
                        source.conninfo,
                        kwargs={
                            **kwargs,
                            "autocommit": True,
                            "application_name": read_pool_name(self._schema()),
                        },
                        min_size=1,
                        max_size=READ_POOL_SIZE,
                        max_idle=READ_POOL_IDLE_SECONDS,
                        open=True,
                        timeout=source.timeout,
                        name="read-models",
                    )
        return self._read_pool

    def close(self) -> None:
        """Close the view's read pool (the datastore is the ledger's)."""
        with self._read_pool_lock:
            pool, self._read_pool = self._read_pool, None
        if pool is not None:
            pool.close()

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
