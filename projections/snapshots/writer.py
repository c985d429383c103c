"""Write a consent snapshot: every subject's decision for one question, as signed Parquet.

Subjects are read from the event store stream by stream (keyset pages on its primary
key, positions up to the snapshot's), each decided by `ledger.snapshot.subject_rows`
(the one rule implementation) and written to Parquet in record batches, so memory stays
flat whatever the ledger's size. The directory appears whole or not at all: it is
written beside its target and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import get_topic

from ledger import store
from ledger.application import ConsentLedger
from ledger.checkpoint import format_timestamp
from ledger.errors import StoreUnavailableError
from ledger.events import EVENT_TYPES, Entry, LedgerEvent, SubjectEvent
from ledger.instants import format_instant
from ledger.snapshot import (
    COLUMNS,
    DATA_FILE,
    MANIFEST_FILE,
    SNAPSHOT_FORMAT,
    Row,
    SnapshotQuestion,
    seal_manifest,
    subject_rows,
)
from projections.export import require_empty_directory
from projections.merkle_log import LogService, StoredCheckpoint

BATCH_ROWS: Final = 65_536  # rows per Parquet record batch (and row group)
SCAN_PAGE: Final = 5_000  # stored events per event-store query

SCHEMA: Final = pa.schema(
    [
        pa.field("subject", pa.string(), nullable=False),
        pa.field("content", pa.string()),
        pa.field("allowed", pa.bool_(), nullable=False),
        pa.field("basis", pa.string(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("terms_version", pa.string()),
    ]
)
assert tuple(SCHEMA.names) == COLUMNS


@dataclass(frozen=True)
class SnapshotCounts:
    """How many rows a snapshot holds, by kind."""

    subjects: int
    content_rows: int
    allowed: int


def subject_histories(ledger: ConsentLedger, up_to: int) -> Iterator[tuple[str, list[Entry]]]:
    """Yield (subject, its entries up to position `up_to`) for every subject, stream by stream."""
    topics = [get_topic(c) for c in EVENT_TYPES.values() if issubclass(c, SubjectEvent)]
    after: tuple[UUID, int] | None = None
    current: list[Entry] = []
    while True:
        try:
            page = store.scan_streams(
                ledger.recorder, topics, up_to=up_to, after=after, limit=SCAN_PAGE
            )
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"the event store is unavailable: {error}") from None
        for position, stored in page:
            event = ledger.mapper.to_domain_event(stored)
            assert isinstance(event, SubjectEvent)
            if current and current[-1].event.originator_id != stored.originator_id:
                yield _subject(current), current
                current = []
            current.append(Entry(position, event))
        if len(page) < SCAN_PAGE:
            break
        last = page[-1][1]
        stream_id = last.originator_id
        assert isinstance(stream_id, UUID)
        after = (stream_id, last.originator_version)
    if current:
        yield _subject(current), current


def _subject(entries: list[Entry]) -> str:
    event: LedgerEvent = entries[0].event
    assert isinstance(event, SubjectEvent)
    return event.subject


def covering_checkpoint(log: LogService, position: int) -> StoredCheckpoint:
    """Return a signed checkpoint whose tree holds the leaf of `position`, signing one if needed.

    Catches the log up first. Position 0 (an empty ledger) is covered by any checkpoint.
    """
    log.catch_up()
    need = log.leaf_at(position).leaf_index + 1 if position > 0 else 0
    latest = log.checkpoint()
    if latest is None or latest.tree_size < need:
        latest = log.head_checkpoint()
    return latest


def create_snapshot(
    ledger: ConsentLedger,
    log: LogService,
    directory: Path,
    question: SnapshotQuestion,
    *,
    created_at: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """Write the snapshot of `question` into `directory` (absent or empty); return its manifest.

    The snapshot reflects the ledger position recorded by `question.known_at` and rests
    on a signed checkpoint covering it, signed with the checkpoint key.
    """
    require_empty_directory(directory)
    position = ledger.ledger_position(question.known_at)
    checkpoint = covering_checkpoint(log, position)
    terms = ledger.terms_catalog()
    temp = directory.parent / f".{directory.name}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        counts = _write_rows(ledger, temp / DATA_FILE, question, position, terms, batch_rows)
        data = temp / DATA_FILE
        manifest = seal_manifest(
            {
                "format": SNAPSHOT_FORMAT,
                "question": {
                    "purpose": question.purpose.name,
                    "party": question.party,
                    "aspect": question.aspect,
                    "at": format_instant(question.at),
                    "known_at": format_instant(question.known_at),
                },
                "position": position,
                "log_id": checkpoint.checkpoint.log_id,
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.checkpoint.root_hash.hex(),
                "checkpoint": checkpoint.to_json(),
                "created_at": format_timestamp(created_at or ledger.clock.now()),
                "rows": {
                    "total": counts.subjects + counts.content_rows,
                    "catalogue": counts.subjects,
                    "content": counts.content_rows,
                    "allowed": counts.allowed,
                },
                "files": [
                    {
                        "name": DATA_FILE,
                        "sha256": file_sha256(data),
                        "bytes": data.stat().st_size,
                        "rows": counts.subjects + counts.content_rows,
                    }
                ],
            },
            log.key,
        )
        (temp / MANIFEST_FILE).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        if directory.exists():
            directory.rmdir()
        temp.rename(directory)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


def _write_rows(
    ledger: ConsentLedger,
    path: Path,
    question: SnapshotQuestion,
    position: int,
    terms: Any,
    batch_rows: int,
) -> SnapshotCounts:
    subjects = content_rows = allowed = 0
    pending: list[Row] = []
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for subject, entries in subject_histories(ledger, position):
            rows = subject_rows(subject, entries, terms, question, position)
            subjects += 1
            content_rows += len(rows) - 1
            allowed += sum(r.allowed for r in rows)
            pending.extend(rows)
            if len(pending) >= batch_rows:
                writer.write_batch(_batch(pending))
                pending = []
        if pending or not subjects:
            writer.write_batch(_batch(pending))
    return SnapshotCounts(subjects, content_rows, allowed)


def _batch(rows: list[Row]) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array([r.subject for r in rows], pa.string()),
            pa.array([r.content for r in rows], pa.string()),
            pa.array([r.allowed for r in rows], pa.bool_()),
            pa.array([r.basis for r in rows], pa.string()),
            pa.array([r.event_id for r in rows], pa.string()),
            pa.array([r.terms_version for r in rows], pa.string()),
        ],
        schema=SCHEMA,
    )


def file_sha256(path: Path) -> str:
    """Return the lowercase hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
