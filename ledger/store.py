"""Queries on the event store's own tables that the `eventsourcing` API does not offer.

They run through the recorder's datastore (no driver is imported here), so they see the
same connection settings, schema and table the library writes. This is also the one
place where the store's driver errors become StoreUnavailableError
(`unavailable_translated`), and where the writers' cross-process lock is taken.

The event index (`ledger_event_index`) maps each event id to its ledger position, stream
and `recorded_at`. It is written by the write pipeline under the writers' lock right
after each append, and caught up from the library's own notification log (decoded by
the library's mapper, so the library's cipher or compression may be switched on) when
it is behind: after a crash between an append and its index rows, the next writer or
lookup completes it.
"""

from __future__ import annotations

import fcntl
import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)

from ledger.errors import StoreUnavailableError

INDEX_TABLE: Final = "ledger_event_index"
INDEX_CATCH_UP_BATCH: Final = 500
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def unavailable_translated() -> Iterator[None]:
    """Turn the event store's driver errors into StoreUnavailableError (the one place)."""
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise StoreUnavailableError(f"the event store is unavailable: {error}") from None


def store_errors_translated(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a method reading the store so that driver errors become unavailability."""

    @functools.wraps(method)
    def translated(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with unavailable_translated():
            return method(*args, **kwargs)

    return translated


def _dialect(recorder: ApplicationRecorder) -> str:
    module = type(recorder).__module__
    if module.startswith("eventsourcing.sqlite"):
        return "sqlite"
    if module.startswith("eventsourcing.postgres"):
        return "postgres"
    raise NotImplementedError(f"no event-store queries for recorder {type(recorder).__name__}")


def _table(recorder: ApplicationRecorder, name: str | None = None) -> str:
    if name is None:
        name = recorder.events_table_name  # type: ignore[attr-defined]
    if _dialect(recorder) == "postgres":
        schema: str = recorder.datastore.schema  # type: ignore[attr-defined]
        return f'"{schema}"."{name}"'
    return name


def _rows(recorder: ApplicationRecorder, sqlite_sql: str, pg_sql: str, params: list[Any]) -> Any:
    dialect = _dialect(recorder)
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(sqlite_sql if dialect == "sqlite" else pg_sql, params)
        return cursor.fetchall()


def _marks(recorder: ApplicationRecorder, sql: str) -> str:
    return sql if _dialect(recorder) == "sqlite" else sql.replace("?", "%s")


def stream_positions(recorder: ApplicationRecorder, stream_id: UUID) -> dict[int, int]:
    """Return {originator_version: ledger position} for every event of one stream."""
    table = _table(recorder)
    rows = _rows(
        recorder,
        f"SELECT originator_version, rowid AS position FROM {table} WHERE originator_id = ?",
        f"SELECT originator_version, notification_id AS position FROM {table} "
        "WHERE originator_id = %s",
        [stream_id.hex if _dialect(recorder) == "sqlite" else stream_id],
    )
    return {int(r["originator_version"]): int(r["position"]) for r in rows}


def select_streams(
    recorder: ApplicationRecorder, stream_ids: list[UUID]
) -> dict[UUID, list[StoredEvent]]:
    """Return the stored events of many streams in one query, each in version order."""
    table = _table(recorder)
    sqlite = _dialect(recorder) == "sqlite"
    marks = ", ".join("?" if sqlite else "%s" for _ in stream_ids)
    statement = (
        f"SELECT originator_id, originator_version, topic, state FROM {table} "
        f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version"
    )
    rows = _rows(recorder, statement, statement, [i.hex if sqlite else i for i in stream_ids])
    streams: dict[UUID, list[StoredEvent]] = {}
    for row in rows:
        raw = row["originator_id"]
        stream_id = raw if isinstance(raw, UUID) else UUID(str(raw))
        streams.setdefault(stream_id, []).append(
            StoredEvent(
                originator_id=stream_id,
                originator_version=int(row["originator_version"]),
                topic=str(row["topic"]),
                state=bytes(row["state"]),
            )
        )
    return streams


@dataclass(frozen=True)
class IndexedEvent:
    """Where the ledger holds one event: its position, stream and ledger time."""

    event_id: UUID
    position: int
    stream_id: UUID
    recorded_at: datetime


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // _MICROSECOND


def create_index_table(recorder: ApplicationRecorder) -> None:
    """Create the event index beside the event store's table unless it exists.

    Requires the caller to serialise concurrent first runs (the composition root's lock).
    """
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(recorder, INDEX_TABLE)} ("
            "event_id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, "
            "stream_id TEXT NOT NULL, recorded_us BIGINT NOT NULL)"
        )


def _index_rows(events: Iterable[IndexedEvent]) -> list[list[Any]]:
    return [[e.event_id.hex, e.position, e.stream_id.hex, _micros(e.recorded_at)] for e in events]


def _insert_index_sql(recorder: ApplicationRecorder) -> str:
    return _marks(
        recorder,
        f"INSERT INTO {_table(recorder, INDEX_TABLE)} "
        "(event_id, position, stream_id, recorded_us) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
    )


def index_events(recorder: ApplicationRecorder, events: Iterable[IndexedEvent]) -> None:
    """Add events to the index; one already there is left as it is."""
    rows = _index_rows(events)
    if not rows:
        return
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.executemany(_insert_index_sql(recorder), rows)


def index_top(recorder: ApplicationRecorder) -> int:
    """Return the highest indexed position (0 if the index is empty)."""
    sql = f"SELECT MAX(position) AS top FROM {_table(recorder, INDEX_TABLE)}"
    rows = _rows(recorder, sql, sql, [])
    return int(rows[0]["top"] or 0) if rows else 0


def locate(recorder: ApplicationRecorder, event_id: UUID) -> tuple[int, UUID] | None:
    """Return the indexed (position, stream id) of `event_id`, or None."""
    sql = f"SELECT position, stream_id FROM {_table(recorder, INDEX_TABLE)} WHERE event_id = ?"
    rows = _rows(recorder, sql, _marks(recorder, sql), [event_id.hex])
    if not rows:
        return None
    return int(rows[0]["position"]), UUID(hex=str(rows[0]["stream_id"]))


_process_writers = threading.Lock()


@dataclass(frozen=True)
class Tops:
    """The heads a writer reads under the lock: the log's, the index's, the last time."""

    log: int
    indexed: int
    recorded_at: datetime | None  # of the last indexed event


class WriterSession:
    """What a writer does under the writers' lock besides appending: read heads, index.

    On PostgreSQL both run on the lock's own transaction (committed when the lock is
    released); on SQLite each in a short transaction of its own.
    """

    def __init__(self, recorder: ApplicationRecorder, cursor: Any = None) -> None:
        self._recorder = recorder
        self._cursor = cursor

    def _fetch(self, sql: str, params: list[Any]) -> Any:
        if self._cursor is None:
            return _rows(self._recorder, sql, _marks(self._recorder, sql), params)
        self._cursor.execute(_marks(self._recorder, sql), params)
        return self._cursor.fetchall()

    def tops(self) -> Tops:
        """Return the log's highest position and the index's, with its `recorded_at`."""
        index, events = _table(self._recorder, INDEX_TABLE), _table(self._recorder)
        position = "rowid" if _dialect(self._recorder) == "sqlite" else "notification_id"
        rows = self._fetch(
            f"SELECT (SELECT MAX({position}) FROM {events}) AS log, i.position, i.recorded_us "
            f"FROM (SELECT 1 AS one) AS o LEFT JOIN (SELECT position, recorded_us FROM {index} "
            "ORDER BY position DESC LIMIT 1) AS i ON 1 = 1",
            [],
        )
        row = rows[0]
        recorded = row["recorded_us"]
        return Tops(
            log=int(row["log"] or 0),
            indexed=int(row["position"] or 0),
            recorded_at=None if recorded is None else _EPOCH + int(recorded) * _MICROSECOND,
        )

    def index(self, events: Iterable[IndexedEvent]) -> None:
        """Add events to the index (one already there is left as it is)."""
        if self._cursor is None:
            index_events(self._recorder, events)
            return
        rows = _index_rows(events)
        if rows:
            self._cursor.executemany(_insert_index_sql(self._recorder), rows)


@contextmanager
def writers_lock(recorder: ApplicationRecorder) -> Iterator[WriterSession]:
    """Hold the lock every ledger writer takes around reading the clock and appending.

    Serialises this process's writers, and the writers of every process on the same
    store: on PostgreSQL an advisory transaction lock on a connection of its own, on a
    SQLite file an exclusive `flock` on a lock file beside it (in memory, one process).
    """
    with _process_writers:
        datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        if _dialect(recorder) == "postgres":
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    [f"{datastore.schema}.ledger-writers"],
                )
                yield WriterSession(recorder, cursor)
            return
        if datastore.pool.is_sqlite_memory_mode:
            yield WriterSession(recorder)
            return
        with Path(f"{datastore.pool.db_name}.writers.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield WriterSession(recorder)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
