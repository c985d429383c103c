"""Queries on the event store's own tables that the `eventsourcing` API does not offer.

They run through the recorder's datastore (no driver is imported here), so they see the
same connection settings, schema and table the library writes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent


def _dialect(recorder: ApplicationRecorder) -> str:
    module = type(recorder).__module__
    if module.startswith("eventsourcing.sqlite"):
        return "sqlite"
    if module.startswith("eventsourcing.postgres"):
        return "postgres"
    raise NotImplementedError(f"no event-store queries for recorder {type(recorder).__name__}")


def _table(recorder: ApplicationRecorder) -> str:
    name: str = recorder.events_table_name  # type: ignore[attr-defined]
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


def positions_holding(recorder: ApplicationRecorder, needle: str) -> list[int]:
    """Return the positions of stored events whose state contains `needle`, in order.

    A full scan inside the database; used to find an event by id when no index has it.
    """
    table = _table(recorder)
    rows = _rows(
        recorder,
        f"SELECT rowid AS position FROM {table} WHERE instr(state, ?) > 0 ORDER BY rowid",
        f"SELECT notification_id AS position FROM {table} "
        "WHERE position(%s::bytea in state) > 0 ORDER BY notification_id",
        [needle.encode()],
    )
    return [int(r["position"]) for r in rows]


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
