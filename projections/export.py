"""Write the audit export of BRIEF §5 (format: `ledger.verify`, docs/audit-export.md).

The export is written against a signed checkpoint of the whole logged tree, streaming
in batches: each batch reads its leaf rows and the stored events at their positions,
re-renders every record, checks its hash against the log (an export never carries a
record that does not verify), and asks for the batch's inclusion proofs with one read.
Memory does not grow with the ledger for a complete or time-filtered export; a subject
filter reads the named subjects' streams (and the terms publications) whole.

The files are written into a hidden sibling directory and renamed into place at the
end, so OUT_DIR either holds a whole export or nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson
from eventsourcing.utils import get_topic

from ledger.crypto import open_evidence
from ledger.errors import ConflictError, InvalidInputError
from ledger.events import Entry, SubjectEvent, TermsPublished
from ledger.instants import format_instant
from ledger.merkle import hash_leaf
from ledger.records import canonical_json, record_of
from ledger.verify import (
    CHECKPOINT_FILE,
    CONSISTENCY_FILE,
    EVENTS_FILE,
    EVIDENCE_FILE,
    EXPORT_FORMAT,
    MANIFEST_FILE,
    NOTE_FILE,
    PROOFS_FILE,
    README_FILE,
    ExportFilter,
    sign_manifest,
)
from projections.export_readme import export_readme
from projections.merkle_log import LeafRow, LogService, StoredCheckpoint, decode_entry

__all__ = [
    "ExportMismatchError",
    "ExportSummary",
    "export_ledger",
    "require_empty_directory",
    "scan_batches",
]

DEFAULT_BATCH: Final = 1000  # leaves per read, proof batch and progress step

Progress = Callable[[int, int], None]
"""Called with (leaves examined, leaves to examine) after each batch."""


class ExportMismatchError(ConflictError):
    """Refuse to export: a stored event no longer matches its leaf in the log."""

    title = "Ledger does not match its log"


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    directory: Path
    checkpoint: StoredCheckpoint
    filter: ExportFilter
    records: int
    evidence_lines: int
    consistency_from: int | None

    def to_json(self) -> dict[str, Any]:
        """Return the summary as `export --json` prints it."""
        cp = self.checkpoint.checkpoint
        return {
            "directory": str(self.directory),
            "log_id": cp.log_id,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "records": self.records,
            "complete": self.filter.complete,
            "filter": self.filter.to_json(),
            "evidence_lines": self.evidence_lines,
            "consistency_from": self.consistency_from,
        }


def export_ledger(
    log: LogService,
    directory: Path,
    export_filter: ExportFilter | None = None,
    *,
    evidence: bool = False,
    since_checkpoint: Mapping[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the export of the logged ledger into `directory` and return what it holds.

    Signs a checkpoint of the whole logged tree first if the latest one is older (the
    caller catches the log up beforehand to cover the ledger's head). Requires
    `directory` to be absent or empty. With `evidence`, evidence.jsonl holds each
    exported record's evidence opened with the subject's key (personal data marked
    erased where the key is gone). With `since_checkpoint` (an earlier checkpoint.json
    of this log), consistency.json proves the export's tree extends it. Raises
    InvalidInputError for a refused request (nothing written) and ExportMismatchError
    if the event store no longer matches the log (nothing left behind).
    """
    export_filter = export_filter or ExportFilter()
    require_empty_directory(directory)
    start, end = export_filter.recorded_from, export_filter.recorded_to
    if start is not None and end is not None and start >= end:
        raise InvalidInputError(
            f"time window: --from {format_instant(start)} is not before --to {format_instant(end)}"
        )
    if batch_size < 1:
        raise InvalidInputError(f"batch size: got {batch_size}, want >= 1")
    checkpoint = log.head_checkpoint()
    consistency = _consistency(log, checkpoint, since_checkpoint)
    temp = directory.parent / f".{directory.name}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        writer = _Writer(log, temp, export_filter, evidence, checkpoint)
        writer.write_records(batch_size, progress)
        if consistency is not None and consistency["first"] != consistency["second"]:
            _write_json(temp / CONSISTENCY_FILE, consistency)
        writer.write_heads(consistency is not None)
        if directory.exists():
            directory.rmdir()  # empty, checked above
        temp.rename(directory)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return ExportSummary(
        directory,
        checkpoint,
        export_filter,
        writer.records,
        writer.evidence_lines,
        consistency["first"] if consistency is not None else None,
    )


def require_empty_directory(directory: Path) -> None:
    """Refuse an OUT_DIR that is a file or a non-empty directory (InvalidInputError)."""
    if directory.is_dir():
        if any(directory.iterdir()):
            raise InvalidInputError(f"export directory {directory} is not empty")
    elif directory.exists():
        raise InvalidInputError(f"export directory {directory} exists and is not a directory")


def _consistency(
    log: LogService, checkpoint: StoredCheckpoint, since: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Return consistency.json from an earlier checkpoint's tree size, or None."""
    if since is None:
        return None
    first = since.get("tree_size")
    size = checkpoint.tree_size
    if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= size:
        raise InvalidInputError(
            f"earlier checkpoint tree_size: got {first!r}, want an integer in [0, {size}]"
        )
    if since.get("log_id") != log.log_id:
        raise InvalidInputError(
            f"earlier checkpoint log_id: got {since.get('log_id')!r}, want {log.log_id!r}"
        )
    if first == 0:
        return {"first": 0, "second": size, "proof": []}
    proof = log.consistency(first, size).to_json()
    if since.get("root_hash") != proof["first_root"]:
        raise ExportMismatchError(
            f"earlier checkpoint of tree size {first}: root {since.get('root_hash')!r}, but "
            f"this log's root at that size is {proof['first_root']}: the log has forked "
            "or the checkpoint is another log's"
        )
    return proof


class _Writer:
    """Write one export's files; counts what it wrote."""

    def __init__(
        self,
        log: LogService,
        directory: Path,
        export_filter: ExportFilter,
        evidence: bool,
        checkpoint: StoredCheckpoint,
    ) -> None:
        self.log = log
        self.directory = directory
        self.filter = export_filter
        self.evidence = evidence
        self.checkpoint = checkpoint
        self.records = 0
        self.evidence_lines = 0

    def write_records(self, batch_size: int, progress: Progress | None) -> None:
        """Write events.jsonl, proofs.jsonl and (if asked) evidence.jsonl."""
        size = self.checkpoint.tree_size
        with (
            (self.directory / EVENTS_FILE).open("wb") as events,
            (self.directory / PROOFS_FILE).open("wb") as proofs,
            _maybe_open(self.directory / EVIDENCE_FILE, self.evidence) as evidence,
        ):
            if self.filter.subjects is not None:
                batches = _subject_batches(self.log, self.filter.subjects, size, batch_size)
            else:
                batches = scan_batches(self.log, size, batch_size)
            for done, total, pairs in batches:
                chosen: list[tuple[LeafRow, Entry, bytes]] = []
                for leaf, entry in pairs:
                    record = record_of(entry, leaf.leaf_index)
                    line = canonical_json(record)
                    if hash_leaf(line) != leaf.leaf_hash:
                        raise ExportMismatchError(
                            f"the stored event at position {leaf.position} no longer matches "
                            f"leaf {leaf.leaf_index} of the log; run `consent-ledger audit`"
                        )
                    if self.filter.selects(record):
                        chosen.append((leaf, entry, line))
                paths = self.log.inclusion_proofs([leaf.leaf_index for leaf, _, _ in chosen], size)
                for (leaf, entry, line), path in zip(chosen, paths, strict=True):
                    events.write(line + b"\n")
                    proofs.write(
                        orjson.dumps(
                            {
                                "leaf_index": leaf.leaf_index,
                                "tree_size": size,
                                "audit_path": [h.hex() for h in path],
                            }
                        )
                        + b"\n"
                    )
                    if evidence is not None:
                        self._write_evidence(evidence, leaf, entry)
                self.records += len(chosen)
                if progress is not None:
                    progress(done, total)

    def _write_evidence(self, handle: IO[bytes], leaf: LeafRow, entry: Entry) -> None:
        """Write the opened evidence of one record, if it has any."""
        event = entry.event
        sealed = getattr(event, "evidence", None)
        if not sealed or not isinstance(event, SubjectEvent):
            return
        opened = open_evidence(
            sealed, subject=event.subject, event_id=event.event_id, keys=self.log.ledger.keys
        )
        line = {
            "leaf_index": leaf.leaf_index,
            "event_id": leaf.event_id,
            "subject": event.subject,
            "evidence": opened,
        }
        handle.write(orjson.dumps(line) + b"\n")
        self.evidence_lines += 1

    def write_heads(self, has_consistency: bool) -> None:
        """Write checkpoint.json, checkpoint.note, the signed manifest.json and README."""
        checkpoint = self.checkpoint
        _write_json(self.directory / CHECKPOINT_FILE, checkpoint.to_json())
        (self.directory / NOTE_FILE).write_text(checkpoint.note, encoding="utf-8")
        cp = checkpoint.checkpoint
        files = [EVENTS_FILE, PROOFS_FILE, CHECKPOINT_FILE, NOTE_FILE, MANIFEST_FILE, README_FILE]
        if self.evidence:
            files.append(EVIDENCE_FILE)
        if has_consistency and (self.directory / CONSISTENCY_FILE).exists():
            files.append(CONSISTENCY_FILE)
        manifest = {
            "format": EXPORT_FORMAT,
            "log_id": cp.log_id,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "exported_at": format_instant(self.log.ledger.clock.now()),
            "filter": self.filter.to_json(),
            "complete": self.filter.complete,
            "records": self.records,
            "evidence": self.evidence,
            "files": sorted(files),
        }
        _write_json(self.directory / MANIFEST_FILE, sign_manifest(manifest, self.log.key))
        (self.directory / README_FILE).write_text(
            export_readme(checkpoint, self.filter, self.records, self.evidence), encoding="utf-8"
        )


Batch = tuple[int, int, list[tuple[LeafRow, Entry]]]


def scan_batches(log: LogService, size: int, batch_size: int, *, first: int = 0) -> Iterator[Batch]:
    """Yield the leaves `first` … `size` - 1 of the tree with their stored events, in batches."""
    recorder = log.ledger.recorder
    for start in range(first, size, batch_size):
        leaves = log.leaves(start, min(size, start + batch_size))
        if len(leaves) != min(size, start + batch_size) - start:
            raise ExportMismatchError(
                f"the log lacks leaf rows in [{start}, {start + batch_size}); "
                "run `consent-ledger audit`"
            )
        notifications = recorder.select_notifications(
            start=leaves[0].position, limit=len(leaves) + 1, stop=leaves[-1].position
        )
        pairs: list[tuple[LeafRow, Entry]] = []
        for index, leaf in enumerate(leaves):
            stored = notifications[index] if index < len(notifications) else None
            if stored is None or stored.id != leaf.position:
                raise ExportMismatchError(
                    f"leaf {leaf.leaf_index} is the event at position {leaf.position}, but the "
                    f"event store holds {'nothing' if stored is None else stored.id} there; "
                    "run `consent-ledger audit`"
                )
            pairs.append((leaf, decode_entry(log.ledger, stored)))
        if len(notifications) > len(leaves):
            extra = notifications[len(leaves)].id
            raise ExportMismatchError(
                f"the event store holds an event at position {extra} that the log never "
                "logged; run `consent-ledger audit`"
            )
        yield min(size, start + batch_size), size, pairs


def _subject_batches(
    log: LogService, subjects: Sequence[str], size: int, batch_size: int
) -> Iterator[Batch]:
    """Yield the named subjects' events and every terms publication in the tree, in batches."""
    ledger = log.ledger
    entries: dict[int, Entry] = {}
    for subject in subjects:
        entries.update((entry.position, entry) for entry in ledger.subject_entries(subject))
    after = 0
    topic = get_topic(TermsPublished)
    while True:
        batch = ledger.recorder.select_notifications(
            start=after, limit=500, topics=[topic], inclusive_of_start=False
        )
        if not batch:
            break
        entries.update((n.id, decode_entry(ledger, n)) for n in batch)
        after = batch[-1].id
    positions = sorted(entries)
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        leaves = log.leaves_at_positions(chunk)
        pairs = [
            (leaves[p], entries[p])
            for p in chunk
            if p in leaves and leaves[p].leaf_index < size  # logged after the checkpoint: out
        ]
        yield min(len(positions), start + batch_size), len(positions), pairs


class _Null:
    """A context manager that yields None: the evidence file when none is asked for."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _maybe_open(path: Path, wanted: bool) -> IO[bytes] | _Null:
    """Open path for binary writing if wanted; otherwise a context yielding None."""
    return path.open("wb") if wanted else _Null()


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    """Write a JSON object, indented for people, with a final newline."""
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
