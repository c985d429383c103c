"""Filter candidate (subject, content) pairs against a snapshot, vectorised with pyarrow.

A pair is allowed when the snapshot's row for that content says so; a content without a
row of its own is decided as its subject's catalogue row; a subject absent from the
snapshot is denied. This is exactly what `check` answers at the snapshot's `at` and
`known_at`: a content that no event for the purpose names is covered only by catalogue
events, as the catalogue row is.

Why pyarrow compute and not DuckDB: the snapshot is already Arrow (Parquet), the lookup
is two hash probes (`index_in`) per record batch, and pyarrow is needed anyway for
Parquet and Spark; DuckDB would add a second engine for the same join. Candidates are
read and written in record batches, so memory is the snapshot's lookup tables plus one
batch, whatever the candidate set's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ledger.errors import InvalidInputError

CANDIDATE_BATCH: Final = 1 << 22  # candidate rows per record batch (4M: the lookup is
# rebuilt per batch, so a batch is large enough to amortise hashing a 1M-subject snapshot)
_SEPARATOR: Final = "\x00"  # cannot occur in an identifier (control characters are refused)


class CandidateError(InvalidInputError):
    """A candidate file the filter cannot read: missing columns, nulls, non-UTF-8 text."""

    title = "Unreadable candidates"


class SnapshotFilter:
    """The lookup tables of one snapshot: its catalogue rows and its content rows."""

    def __init__(self, table: pa.Table) -> None:
        """Build the lookups from a snapshot's rows (columns of `ledger.snapshot.COLUMNS`)."""
        catalogue = table.filter(pc.is_null(table["content"]))
        content = table.filter(pc.is_valid(table["content"]))
        self._subjects = catalogue["subject"].combine_chunks()
        self._subject_allowed = catalogue["allowed"].combine_chunks()
        self._keys = pc.binary_join_element_wise(
            content["subject"], content["content"], _SEPARATOR
        ).combine_chunks()
        self._key_allowed = content["allowed"].combine_chunks()
        # Which catalogue subjects have content rows: only their pairs need the second probe.
        self._has_content = pc.is_in(self._subjects, value_set=content["subject"].combine_chunks())

    def allowed(self, subjects: pa.Array, contents: pa.Array) -> pa.BooleanArray:
        """Return, for each pair, whether the snapshot allows it (null content: catalogue).

        Each call hashes the snapshot's subjects once: pass large batches (CANDIDATE_BATCH).
        """
        found = pc.index_in(subjects, value_set=self._subjects)
        verdict = pc.fill_null(pc.take(self._subject_allowed, found), False)
        if not len(self._keys):
            result: pa.BooleanArray = verdict
            return result
        need = pc.fill_null(pc.take(self._has_content, found), False)
        if not pc.any(need).as_py():
            return verdict
        rows = pc.indices_nonzero(need)
        keys = pc.binary_join_element_wise(
            pc.take(subjects, rows), pc.take(contents, rows), _SEPARATOR
        )
        specific = pc.take(self._key_allowed, pc.index_in(keys, value_set=self._keys))
        merged = pc.coalesce(specific, pc.take(verdict, rows))
        replaced: pa.BooleanArray = pc.replace_with_mask(verdict, need, merged)
        return replaced

    def filter_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the batch's allowed rows, every column carried through, in order."""
        subjects, contents = _candidate_columns(batch)
        return batch.filter(self.allowed(subjects, contents))

    def filter_pairs(
        self, pairs: Iterable[tuple[str, str]], chunk: int = 65_536
    ) -> Iterator[tuple[str, str]]:
        """Yield the allowed pairs of a stream of pairs, in order, chunk by chunk."""
        buffer: list[tuple[str, str]] = []
        for pair in pairs:
            buffer.append(pair)
            if len(buffer) >= chunk:
                yield from self._chunk(buffer)
                buffer = []
        if buffer:
            yield from self._chunk(buffer)

    def _chunk(self, pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        mask = self.allowed(
            pa.array([s for s, _ in pairs], pa.string()),
            pa.array([c for _, c in pairs], pa.string()),
        ).to_pylist()
        for pair, keep in zip(pairs, mask, strict=True):
            if keep:
                yield pair


def _candidate_columns(batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array]:
    names = batch.schema.names
    missing = [c for c in ("subject", "content") if c not in names]
    if missing:
        raise CandidateError(
            f"candidates lack column(s) {', '.join(missing)}: want subject and content "
            f"(got {', '.join(names) or 'none'})"
        )
    columns = []
    for name in ("subject", "content"):
        column = batch.column(names.index(name))
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            try:
                column = column.cast(pa.string())  # validates UTF-8
            except pa.ArrowInvalid:
                raise CandidateError(f"column {name} holds text that is not UTF-8") from None
        elif pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise CandidateError(f"column {name} is {column.type}, want text (UTF-8 string)")
        try:
            column.validate(full=True)  # Parquet readers do not check UTF-8 themselves
        except pa.ArrowInvalid:
            raise CandidateError(f"column {name} holds text that is not UTF-8") from None
        columns.append(column)
    if columns[0].null_count:
        raise CandidateError("column subject holds nulls; every candidate needs a subject")
    return columns[0], columns[1]


def filter_parquet(
    snapshot: SnapshotFilter, source: Path, target: Path, *, batch_rows: int = CANDIDATE_BATCH
) -> tuple[int, int]:
    """Write `source`'s allowed rows to `target` (Parquet); return (rows read, rows kept).

    The output appears whole or not at all: it is written to a temporary file beside the
    target and renamed; on any error nothing is left behind.
    """
    try:
        parquet = pq.ParquetFile(source)
    except (OSError, pa.ArrowInvalid) as error:
        raise CandidateError(f"{source}: not a readable Parquet file: {error}") from None
    temp = target.parent / f".{target.name}.partial-{os.getpid()}"
    read = kept = 0
    try:
        with pq.ParquetWriter(temp, parquet.schema_arrow, compression="zstd") as writer:
            for batch in parquet.iter_batches(batch_size=batch_rows):
                allowed = snapshot.filter_batch(batch)
                read += batch.num_rows
                kept += allowed.num_rows
                writer.write_batch(allowed)
        temp.rename(target)
    except pa.ArrowInvalid as error:
        temp.unlink(missing_ok=True)
        raise CandidateError(f"{source}: {error}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return read, kept
