"""Verify a consent snapshot offline: signature, digests and, given an export, every row.

`verify_snapshot` needs only the snapshot directory (and optionally the log's public key
and a verified audit export of the same log): no database, no ledger. With an export it
recomputes each row from the export's events up to the snapshot's position with
`ledger.snapshot.subject_rows`, after checking that those events are exactly the leaves
of the signed tree the snapshot names, and reports the first row that differs.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ledger.checkpoint import CheckpointError, verify_signed_checkpoint
from ledger.errors import LedgerError
from ledger.events import Entry, SubjectEvent, TermsPublished
from ledger.instants import parse_instant
from ledger.merkle import Frontier, hash_leaf
from ledger.replay import entry_of_record
from ledger.snapshot import (
    COLUMNS,
    DATA_FILE,
    MANIFEST_FILE,
    SNAPSHOT_FORMAT,
    Row,
    SnapshotError,
    SnapshotQuestion,
    check_manifest_signature,
    subject_rows,
)
from ledger.verify import EVENTS_FILE, verify_export
from ledger.vocabulary import Vocabulary, check_aspect, check_party
from projections.snapshots.writer import file_sha256


@dataclass(frozen=True)
class SnapshotReport:
    """What a verified snapshot holds and what was checked."""

    manifest: dict[str, Any]
    rows_recomputed: int | None  # None: no export given
    key_trusted: bool

    def to_json(self) -> dict[str, Any]:
        """Return the report as `snapshot verify --json` prints it."""
        return {
            "verified": True,
            "snapshot_id": self.manifest["snapshot_id"],
            "position": self.manifest["position"],
            "tree_size": self.manifest["tree_size"],
            "root_hash": self.manifest["root_hash"],
            "rows": self.manifest["rows"]["total"],
            "rows_recomputed": self.rows_recomputed,
            "key_trusted": self.key_trusted,
        }


def read_manifest(directory: Path) -> dict[str, Any]:
    """Return a snapshot's manifest.json as an object; SnapshotError if unreadable."""
    path = directory / MANIFEST_FILE
    try:
        value = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SnapshotError(f"{directory}: no {MANIFEST_FILE}; not a snapshot directory") from None
    except (OSError, orjson.JSONDecodeError) as error:
        raise SnapshotError(f"{MANIFEST_FILE}: {error}") from None
    if not isinstance(value, dict) or value.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{MANIFEST_FILE}: want format {SNAPSHOT_FORMAT!r}")
    return value


def snapshot_question(manifest: dict[str, Any], vocabulary: Vocabulary) -> SnapshotQuestion:
    """Return the question a manifest names; an unknown purpose is refused."""
    asked = manifest.get("question")
    if not isinstance(asked, dict):
        raise SnapshotError(f"{MANIFEST_FILE}: question is missing")
    try:
        return SnapshotQuestion(
            purpose=vocabulary.purpose(str(asked.get("purpose"))),
            party=check_party(str(asked.get("party"))),
            aspect=check_aspect(str(asked.get("aspect"))),
            at=parse_instant(str(asked.get("at")), field="at"),
            known_at=parse_instant(str(asked.get("known_at")), field="known_at"),
        )
    except LedgerError as error:
        raise SnapshotError(f"{MANIFEST_FILE}: question: {error.detail}") from None


def open_snapshot(
    directory: Path, *, public_key: bytes | None = None, vocabulary: Vocabulary | None = None
) -> tuple[dict[str, Any], SnapshotQuestion]:
    """Check a snapshot's signature, checkpoint and file digests; return manifest and question.

    Every user of a snapshot (filter, Spark, lineage) opens it through here, so an altered
    file or a wrong signature is refused before any row is read.
    """
    manifest = read_manifest(directory)
    check_manifest_signature(manifest, public_key)
    try:
        checkpoint = verify_signed_checkpoint(
            manifest.get("checkpoint") or {}, str(manifest["public_key"])
        )
    except CheckpointError as error:
        raise SnapshotError(f"{MANIFEST_FILE}: checkpoint: {error}") from None
    if (checkpoint.tree_size, checkpoint.root_hash.hex()) != (
        manifest.get("tree_size"),
        manifest.get("root_hash"),
    ):
        raise SnapshotError(f"{MANIFEST_FILE}: tree_size/root_hash differ from its checkpoint")
    question = snapshot_question(manifest, vocabulary or Vocabulary())
    files = manifest.get("files")
    if not isinstance(files, list) or [f.get("name") for f in files] != [DATA_FILE]:
        raise SnapshotError(f"{MANIFEST_FILE}: files must list exactly {DATA_FILE}")
    for entry in files:
        path = directory / str(entry["name"])
        if not path.is_file():
            raise SnapshotError(f"{entry['name']}: missing from the snapshot")
        digest = file_sha256(path)
        if digest != entry.get("sha256"):
            raise SnapshotError(
                f"{entry['name']}: SHA-256 is {digest}, the manifest says {entry.get('sha256')}"
                " (the file was altered)"
            )
    return manifest, question


def read_rows(directory: Path) -> Iterator[Row]:
    """Yield a snapshot's rows in file order (record batch by record batch)."""
    parquet = pq.ParquetFile(directory / DATA_FILE)
    if tuple(parquet.schema_arrow.names) != COLUMNS:
        raise SnapshotError(f"{DATA_FILE}: columns {parquet.schema_arrow.names}, want {COLUMNS}")
    for batch in parquet.iter_batches(batch_size=65_536):
        columns = [batch.column(i).to_pylist() for i in range(len(COLUMNS))]
        for values in zip(*columns, strict=True):
            yield Row(*values)


def load_table(directory: Path) -> pa.Table:
    """Return a (verified) snapshot's rows as one Arrow table."""
    return pq.read_table(directory / DATA_FILE)


def verify_snapshot(
    directory: Path, *, public_key: bytes | None = None, export: Path | None = None
) -> SnapshotReport:
    """Verify the snapshot in `directory`; with `export`, recompute every row from it.

    Raises SnapshotError (or VerificationError, for the export) at the first failure.
    """
    manifest, question = open_snapshot(directory, public_key=public_key)
    rows = sum(1 for _ in read_rows(directory))
    if rows != manifest["rows"]["total"]:
        raise SnapshotError(f"{DATA_FILE}: {rows} rows, the manifest says {manifest['rows']}")
    recomputed = None
    if export is not None:
        trusted = public_key or base64.b64decode(str(manifest["public_key"]))
        verify_export(export, public_key=trusted)
        recomputed = _recompute(directory, export, manifest, question)
    return SnapshotReport(manifest, recomputed, key_trusted=public_key is not None)


def _recompute(
    directory: Path, export: Path, manifest: dict[str, Any], question: SnapshotQuestion
) -> int:
    size, position = int(manifest["tree_size"]), int(manifest["position"])
    histories: dict[str, list[Entry]] = {}
    terms: dict[str, TermsPublished] = {}
    leaves: list[bytes] = []
    with (export / EVENTS_FILE).open("rb") as handle:
        for line in handle:
            line = line.rstrip(b"\n")
            record = orjson.loads(line)
            if record["leaf_index"] >= size:
                break
            leaves.append(hash_leaf(line))
            if record["position"] > position:
                continue
            entry = entry_of_record(record)
            if isinstance(entry.event, TermsPublished):
                terms[entry.event.version] = entry.event
            elif isinstance(entry.event, SubjectEvent):
                histories.setdefault(entry.event.subject, []).append(entry)
    if len(leaves) != size:
        raise SnapshotError(
            f"{EVENTS_FILE}: holds {len(leaves)} leaves, the snapshot rests on {size}: "
            "verify against a complete export of at least that tree"
        )
    root = Frontier.empty().extend(leaves)[0].root()
    if root.hex() != manifest["root_hash"]:
        raise SnapshotError(
            f"the export's first {size} leaves have root {root.hex()}, the snapshot's "
            f"checkpoint says {manifest['root_hash']}"
        )
    number = 0
    pending: list[Row] = []
    for row in read_rows(directory):
        if pending and row.subject != pending[0].subject:
            number = _compare(pending, number, histories, terms, question, position)
            pending = []
        pending.append(row)
    if pending:
        number = _compare(pending, number, histories, terms, question, position)
    if histories:
        missing = sorted(histories)[0]
        raise SnapshotError(f"subject {missing!r} has events in the export but no row")
    return number


def _compare(
    got: list[Row],
    number: int,
    histories: dict[str, list[Entry]],
    terms: dict[str, TermsPublished],
    question: SnapshotQuestion,
    position: int,
) -> int:
    subject = got[0].subject
    entries = histories.pop(subject, None)
    if entries is None:
        raise SnapshotError(
            f"row {number + 1} (subject {subject!r}): no such subject in the export"
        )
    want = subject_rows(subject, entries, terms, question, position)
    for offset, (have, expected) in enumerate(zip(got, want, strict=False)):
        if have != expected:
            raise SnapshotError(
                f"row {number + offset + 1} (subject {subject!r}, content {have.content!r}) "
                f"differs: got {_show(have)}, recomputed {_show(expected)}"
            )
    if len(got) != len(want):
        raise SnapshotError(
            f"subject {subject!r}: {len(got)} rows in the snapshot, {len(want)} recomputed"
        )
    return number + len(got)


def _show(row: Row) -> str:
    return (
        f"allowed={row.allowed} basis={row.basis} event_id={row.event_id} "
        f"terms_version={row.terms_version}"
    )
