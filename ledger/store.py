# long module: every query on the event store's own tables and the writers' lock (one adapter)
"""Queries on the event store's own tables that the `eventsourcing` API does not offer.

They run through the recorder's datastore (no driver is imported here), so they see the
same connection settings, schema and table the library writes. This is also the one
place where the store's driver errors become StoreUnavailableError
(`unavailable_translated`), and where the writers' cross-process lock is taken.

The event index (`ledger_event_index`) maps each event id to its ledger position and
stream. It is derived from the library's own notification log (decoded by the
library's mapper, so the library's cipher or compression may be switched on): the
write pipeline catches it up in batches, and a lookup catches it up to the log's head
before it answers "unknown", so it is complete whenever it is asked.
"""

from __future__ import annotations

import fcntl
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
    """Where the ledger holds one event: its position and stream."""

    event_id: UUID
    position: int
    stream_id: UUID


def create_index_table(recorder: ApplicationRecorder) -> None:
    """Create the event index beside the event store's table unless it exists.

    Requires the caller to serialise concurrent first runs (the composition root's lock).
    """
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(recorder, INDEX_TABLE)} ("
            "event_id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, "
            "stream_id TEXT NOT NULL)"
        )


def index_events(recorder: ApplicationRecorder, events: Iterable[IndexedEvent]) -> None:
    """Add events to the index in one transaction; one already there is left as it is."""
    rows = [[e.event_id.hex, e.position, e.stream_id.hex] for e in events]
    if not rows:
        return
    statement = _marks(
        recorder,
        f"INSERT INTO {_table(recorder, INDEX_TABLE)} (event_id, position, stream_id) "
        "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.executemany(statement, rows)


def _heads_sql(recorder: ApplicationRecorder) -> str:
    index, events = _table(recorder, INDEX_TABLE), _table(recorder)
    position = "rowid" if _dialect(recorder) == "sqlite" else "notification_id"
    return (
        f"SELECT (SELECT MAX({position}) FROM {events}) AS log, "
        f"(SELECT MAX(position) FROM {index}) AS indexed"
    )


def _heads(row: Any) -> tuple[int, int]:
    return int(row["log"] or 0), int(row["indexed"] or 0)


def heads(recorder: ApplicationRecorder) -> tuple[int, int]:
    """Return the log's highest position and the index's (0 for none), in one query."""
    sql = _heads_sql(recorder)
    return _heads(_rows(recorder, sql, sql, [])[0])


def locate(recorder: ApplicationRecorder, event_id: UUID) -> tuple[int, UUID] | None:
    """Return the indexed (position, stream id) of `event_id`, or None."""
    sql = f"SELECT position, stream_id FROM {_table(recorder, INDEX_TABLE)} WHERE event_id = ?"
    rows = _rows(recorder, sql, _marks(recorder, sql), [event_id.hex])
    if not rows:
        return None
    return int(rows[0]["position"]), UUID(hex=str(rows[0]["stream_id"]))


_process_writers = threading.Lock()


WRITTEN_SINCE_LIMIT: Final = 1000  # more streams written by others: forget the whole cache


@dataclass(frozen=True)
class WritersTurn:
    """What a writer holding the writers' lock sees and may do.

    `heads` are the log's and the index's highest positions, read once the lock was
    held. `written_since` are the streams appended after the position the writer asked
    about (every other writer's, since its own last append), or None if more than
    WRITTEN_SINCE_LIMIT (or it asked about none). `last` is the log's last event (None
    for an empty log). `insert` appends stored events and commits them, returning their
    positions; on PostgreSQL in the lock's own transaction (the commit releases the lock).
    """

    heads: tuple[int, int]
    written_since: frozenset[UUID] | None
    last: StoredEvent | None
    insert: Callable[[Sequence[StoredEvent]], list[int]]


def _since_sql(recorder: ApplicationRecorder) -> str:
    position = "rowid" if _dialect(recorder) == "sqlite" else "notification_id"
    return _marks(
        recorder,
        f"SELECT DISTINCT originator_id FROM {_table(recorder)} WHERE {position} > ? "
        f"LIMIT {WRITTEN_SINCE_LIMIT + 1}",
    )


def _last_sql(recorder: ApplicationRecorder) -> str:
    position = "rowid" if _dialect(recorder) == "sqlite" else "notification_id"
    return (
        f"SELECT originator_id, originator_version, topic, state FROM {_table(recorder)} "
        f"ORDER BY {position} DESC LIMIT 1"
    )


def _stream_id(raw: Any) -> UUID:
    return raw if isinstance(raw, UUID) else UUID(str(raw))


def _written(rows: Sequence[Any]) -> frozenset[UUID] | None:
    if len(rows) > WRITTEN_SINCE_LIMIT:
        return None
    return frozenset(_stream_id(r["originator_id"]) for r in rows)


def _stored(row: Any) -> StoredEvent | None:
    if row is None:
        return None
    return StoredEvent(
        originator_id=_stream_id(row["originator_id"]),
        originator_version=int(row["originator_version"]),
        topic=str(row["topic"]),
        state=bytes(row["state"]),
    )


def _sqlite_turn(recorder: ApplicationRecorder, since: int | None) -> WritersTurn:
    """Read what a SQLite writer's turn sees (the lock is held), in one read transaction."""
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(_heads_sql(recorder))
        found = _heads(cursor.fetchone())
        written = None
        if since is not None:
            cursor.execute(_since_sql(recorder), [since])
            written = _written(cursor.fetchall())
        cursor.execute(_last_sql(recorder))
        last = _stored(cursor.fetchone())
    return WritersTurn(found, written, last, lambda events: _library_insert(recorder, events))


@contextmanager
def writers_lock(
    recorder: ApplicationRecorder, *, since: int | None = None
) -> Iterator[WritersTurn]:
    """Hold the lock every ledger writer takes around reading the clock and appending.

    Serialises this process's writers, and the writers of every process on the same
    store: on PostgreSQL a transaction-scoped advisory lock taken by the transaction
    that then inserts and commits (two round trips in all: the lock with the heads, then
    the insert with the commit); on a SQLite file an exclusive `flock` on a lock file
    beside it (in memory: one process), the library inserting as usual. Yields the
    `WritersTurn`, its `written_since` about the positions after `since`. A turn that
    does not insert rolls back, which releases the lock too.
    """
    with _process_writers:
        datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        if _dialect(recorder) == "postgres":
            with datastore.get_connection() as conn:
                try:
                    yield _postgres_turn(recorder, conn, since)
                finally:
                    if conn.info.transaction_status.name in ("INTRANS", "INERROR"):
                        conn.execute("ROLLBACK")
            return
        if datastore.pool.is_sqlite_memory_mode:
            yield _sqlite_turn(recorder, since)
            return
        with Path(f"{datastore.pool.db_name}.writers.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield _sqlite_turn(recorder, since)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _library_insert(recorder: ApplicationRecorder, events: Sequence[StoredEvent]) -> list[int]:
    positions = recorder.insert_events(events)
    assert positions is not None
    assert len(positions) == len(events)
    return list(positions)


def _postgres_turn(recorder: ApplicationRecorder, conn: Any, since: int | None) -> WritersTurn:
    """Begin the writers' transaction on `conn`: lock, heads, the streams written since
    `since` and the log's last event, in one round trip.

    The reads are statements of their own after the lock's, so their snapshots are
    taken once the lock is held (READ COMMITTED): they see every append committed
    before this turn.
    """
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"{recorder.datastore.schema}.ledger-writers"],  # type: ignore[attr-defined]
            prepare=True,
        )
        head_rows = conn.execute(_heads_sql(recorder), prepare=True)
        since_rows = (
            conn.execute(_since_sql(recorder), [since], prepare=True) if since is not None else None
        )
        last_rows = conn.execute(_last_sql(recorder), prepare=True)
        row = head_rows.fetchone()
        written = _written(since_rows.fetchall()) if since_rows is not None else None
        last = _stored(last_rows.fetchone())

    def insert(events: Sequence[StoredEvent]) -> list[int]:
        # The library's own statements (table lock, notify, insert returning the
        # positions), then the commit, in one round trip. An error (a version taken by
        # another writer) aborts the rest: the commit does not run (leaving the pipeline
        # then reports it aborted, which says nothing more), the caller's exit rolls
        # back, and the first error is raised, translated by the datastore's connection.
        error: Exception | None = None
        positions: list[int] = []
        try:
            with conn.pipeline() as pipeline, conn.cursor() as cursor:
                recorder._insert_stored_events(cursor, events)  # type: ignore[attr-defined]
                conn.execute("COMMIT")
                try:
                    pipeline.sync()
                except Exception as caught:  # re-raised below, out of the pipeline
                    error = caught
                else:
                    positions = [int(r["notification_id"]) for r in cursor.fetchall()]
        except Exception:
            if error is None:
                raise
        if error is not None:
            raise error
        if len(positions) != len(events):
            raise RuntimeError(f"insert returned {len(positions)} positions, want {len(events)}")
        return positions

    return WritersTurn(_heads(row), written, last, insert)


def scan_streams(
    recorder: ApplicationRecorder,
    topics: list[str],
    *,
    up_to: int,
    after: tuple[UUID, int] | None = None,
    limit: int = 5000,
) -> list[tuple[int, StoredEvent]]:
    """Return up to `limit` stored events of the given topics, by (stream, version).

    Only events at positions <= `up_to`, after the (stream id, version) `after`: keyset
    paging on the primary key, so a whole scan reads each row once with flat memory.
    Returns (position, stored event) pairs; a stream may continue on the next page.
    """
    table = _table(recorder)
    sqlite = _dialect(recorder) == "sqlite"
    mark = "?" if sqlite else "%s"
    position = "rowid" if sqlite else "notification_id"
    topic_marks = ", ".join(mark for _ in topics)
    statement = (
        f"SELECT originator_id, originator_version, topic, state, {position} AS position "
        f"FROM {table} WHERE (originator_id, originator_version) > ({mark}, {mark}) "
        f"AND {position} <= {mark} AND topic IN ({topic_marks}) "
        f"ORDER BY originator_id, originator_version LIMIT {mark}"
    )
    stream, version = after if after is not None else (UUID(int=0), -1)
    rows = _rows(
        recorder,
        statement,
        statement,
        [stream.hex if sqlite else stream, version, up_to, *topics, limit],
    )
    found: list[tuple[int, StoredEvent]] = []
    for row in rows:
        raw = row["originator_id"]
        stream_id = raw if isinstance(raw, UUID) else UUID(str(raw))
        found.append(
            (
                int(row["position"]),
                StoredEvent(
                    originator_id=stream_id,
                    originator_version=int(row["originator_version"]),
                    topic=str(row["topic"]),
                    state=bytes(row["state"]),
                ),
            )
        )
    return found
