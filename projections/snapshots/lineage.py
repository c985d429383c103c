"""Lineage of training datasets: register one from a snapshot, list its impacts, report it.

The ledger keeps, beside the event store, the items of each registered dataset (table
`dataset_items`: the pairs used, or without `--items` every row the snapshot allowed)
with the snapshot's basis, deciding event and terms version for each. `DatasetRegistered`
itself is an event of the dataset's own stream: a leaf of the Merkle log, exported like
every event. Impacts are decided now, per subject, by `ledger.datasets.impact_of`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from ledger import store
from ledger.application import ConsentLedger, Receipt
from ledger.datasets import Impact, check_dataset_name, impact_of, items_digest, registration
from ledger.decisions import decide
from ledger.errors import DatasetAlreadyRegisteredError, InvalidInputError, NotFoundError
from ledger.events import (
    ConsentExpired,
    DatasetRegistered,
    Entry,
    SubjectEvent,
    TermsPublished,
    dataset_stream_id,
)
from ledger.instants import format_instant
from ledger.snapshot import MANIFEST_FILE, SnapshotError
from projections.database import Database
from projections.merkle_log import LogService
from projections.snapshots.verify import load_table, open_snapshot

ITEM_CHUNK: Final = 500  # subjects decided per batch of impacts
CATALOGUE: Final = ""  # `content` of a catalogue row in dataset_items
_INSTANT: Final = timedelta(microseconds=1)  # the ledger clock's resolution


class UnknownDatasetError(NotFoundError):
    """A dataset name that was never registered."""

    title = "Unknown dataset"


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its registration event and where it stands in the ledger."""

    entry: Entry

    @property
    def event(self) -> DatasetRegistered:
        """Return the registration event."""
        event = self.entry.event
        assert isinstance(event, DatasetRegistered)
        return event

    def to_json(self) -> dict[str, Any]:
        """Return the dataset as `GET /v1/datasets/{name}` answers it."""
        e = self.event
        return {
            "dataset": e.name,
            "event_id": str(e.event_id),
            "position": self.entry.position,
            "recorded_at": format_instant(e.recorded_at),
            "snapshot_id": e.snapshot_id,
            "manifest_sha256": e.manifest_sha256,
            "question": {
                "purpose": e.purpose,
                "party": e.party,
                "aspect": e.aspect,
                "at": format_instant(e.snapshot_at),
                "known_at": format_instant(e.snapshot_known_at),
            },
            "snapshot_position": e.snapshot_position,
            "tree_size": e.tree_size,
            "root_hash": e.root_hash,
            "model": e.model,
            "model_version": e.model_version,
            "items_sha256": e.items_sha256,
            "items_count": e.items_count,
        }


class DatasetStore:
    """The `dataset_items` table in the ledger's database; created on first use."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def ensure_table(self) -> None:
        """Create the table and its subject index if they do not exist."""
        self.database.create_tables(
            "dataset_items",
            [
                "CREATE TABLE IF NOT EXISTS dataset_items ("
                " dataset TEXT NOT NULL, subject TEXT NOT NULL, content TEXT NOT NULL,"
                " basis TEXT NOT NULL, event_id TEXT, terms_version TEXT,"
                " PRIMARY KEY (dataset, subject, content))",
                "CREATE INDEX IF NOT EXISTS dataset_items_subject ON dataset_items (subject)",
            ],
        )

    def replace(self, dataset: str, rows: Iterable[Sequence[Any]]) -> None:
        """Store a dataset's rows (subject, content, basis, event_id, terms_version)."""
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql("DELETE FROM dataset_items WHERE dataset = ?"), [dataset]
            )
            batch: list[Sequence[Any]] = []
            statement = self.database.sql(
                "INSERT INTO dataset_items (dataset, subject, content, basis, event_id,"
                " terms_version) VALUES (?, ?, ?, ?, ?, ?)"
            )
            for row in rows:
                batch.append((dataset, *row))
                if len(batch) >= 10_000:
                    cursor.executemany(statement, batch)
                    batch = []
            if batch:
                cursor.executemany(statement, batch)

    def items(self, dataset: str, subjects: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Return (subject, content|None, basis, event_id, terms_version) rows, by subject."""
        self.ensure_table()
        where, params = "dataset = ?", [dataset]
        if subjects is not None:
            where += f" AND subject IN ({', '.join('?' for _ in subjects)})"
            params.extend(subjects)
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "SELECT subject, content, basis, event_id, terms_version FROM dataset_items"
                    f" WHERE {where} ORDER BY subject, content"
                ),
                params,
            )
            rows = cursor.fetchall()
        return [(s, c or None, b, e, t) for s, c, b, e, t in rows]

    def datasets_of(self, subjects: Sequence[str]) -> dict[str, list[str]]:
        """Return {subject: names of the datasets holding an item of it} for `subjects`."""
        self.ensure_table()
        found: dict[str, list[str]] = {}
        with self.database.transaction() as cursor:
            for start in range(0, len(subjects), ITEM_CHUNK):
                chunk = list(subjects[start : start + ITEM_CHUNK])
                cursor.execute(
                    self.database.sql(
                        "SELECT DISTINCT subject, dataset FROM dataset_items WHERE subject IN "
                        f"({', '.join('?' for _ in chunk)}) ORDER BY subject, dataset"
                    ),
                    chunk,
                )
                for subject, dataset in cursor.fetchall():
                    found.setdefault(str(subject), []).append(str(dataset))
        return found

    def summary(self, dataset: str) -> list[tuple[str, str | None, int]]:
        """Return (basis, terms_version, count) of a dataset's items."""
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "SELECT basis, terms_version, COUNT(*) FROM dataset_items WHERE dataset = ?"
                    " GROUP BY basis, terms_version ORDER BY basis, terms_version"
                ),
                [dataset],
            )
            return [(str(b), t, int(n)) for b, t, n in cursor.fetchall()]


class Lineage:
    """Register datasets, find them, and list the impacts of later events on them."""

    def __init__(self, ledger: ConsentLedger, log: LogService, datasets: DatasetStore) -> None:
        self.ledger = ledger
        self.log = log
        self.datasets = datasets
        self._registered: dict[str, Dataset] = {}

    def register(
        self,
        name: str,
        snapshot: Path,
        *,
        model: str | None = None,
        model_version: str | None = None,
        items: Sequence[tuple[str, str]] | None = None,
    ) -> tuple[Receipt, Dataset]:
        """Register `name` as built from the snapshot in `snapshot` (with its `items`).

        The snapshot must verify under this ledger's checkpoint key and rest on one of
        its stored checkpoints; every item must be allowed by the snapshot.
        """
        check_dataset_name(name)
        if self._find(name) is not None:
            raise DatasetAlreadyRegisteredError(name)
        manifest, question = open_snapshot(
            snapshot, public_key=self.log.key.public_key_raw(), vocabulary=self.ledger.vocabulary
        )
        stored = self.log.checkpoint_at(int(manifest["tree_size"]))
        if stored is None or stored.checkpoint.root_hash.hex() != manifest["root_hash"]:
            raise SnapshotError(
                f"{MANIFEST_FILE}: tree size {manifest['tree_size']} with root "
                f"{manifest['root_hash']} is not a checkpoint of this ledger"
            )
        table = load_table(snapshot)
        digest = count = None
        rows: Iterable[tuple[Any, ...]]
        if items is None:
            rows = _allowed_rows(table)
        else:
            digest, count = items_digest(items)
            rows = _item_rows(table, sorted(set(items)))
        manifest_sha256 = hashlib.sha256((snapshot / MANIFEST_FILE).read_bytes()).hexdigest()
        command = registration(
            name,
            manifest,
            manifest_sha256,
            at=question.at,
            known_at=question.known_at,
            model=model,
            model_version=model_version,
            items_sha256=digest,
            items_count=count,
        )
        self.datasets.replace(name, rows)
        receipt = self.ledger.execute(command)
        found = self._find(name)
        assert found is not None
        return receipt, found

    def dataset(self, name: str) -> Dataset:
        """Return a registered dataset; UnknownDatasetError if there is none of that name."""
        found = self._find(check_dataset_name(name))
        if found is None:
            raise UnknownDatasetError(f"no dataset {name!r} is registered")
        return found

    def _find(self, name: str) -> Dataset | None:
        stream_id = dataset_stream_id(name)
        loaded = store.select_streams(self.ledger.recorder, [stream_id]).get(stream_id, [])
        if not loaded:
            return None
        event = self.ledger.mapper.to_domain_event(loaded[0])
        position = store.stream_positions(self.ledger.recorder, stream_id)[1]
        assert isinstance(event, DatasetRegistered)
        return Dataset(Entry(position, event))

    def impacts(self, name: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Return `{"dataset", "snapshot_id", "position", "impacts": [...]}`: what the
        snapshot allowed that is denied now, each with the event that changed it."""
        dataset = self.dataset(name)
        now = now or self.ledger.clock.now()
        position = self.ledger.ledger_position()
        return {
            "dataset": dataset.event.name,
            "snapshot_id": dataset.event.snapshot_id,
            "position": position,
            "impacts": [i.to_json() for i in self.iter_impacts(dataset, now, position)],
        }

    def iter_impacts(self, dataset: Dataset, now: datetime, position: int) -> Iterator[Impact]:
        """Yield the impacts on a dataset's items, subject by subject."""
        rows = self.datasets.items(dataset.event.name)
        terms = self.ledger.terms_catalog()
        by_subject: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_subject.setdefault(row[0], []).append(row)
        for subject, items in by_subject.items():
            yield from self.subject_impacts(dataset, subject, items, terms, now, position)

    def subject_impacts(
        self,
        dataset: Dataset,
        subject: str,
        items: Sequence[tuple[Any, ...]],
        terms: Any,
        now: datetime,
        position: int,
        history: Sequence[Entry] | None = None,
    ) -> Iterator[Impact]:
        """Yield the impacts on one subject's items of a dataset, decided at `now`."""
        e = dataset.event
        entries = self.ledger.subject_entries(subject) if history is None else history
        for _, content, _, event_id, _ in items:
            question = self.ledger.question(
                subject, e.purpose, e.party, content, e.aspect, now, now
            )
            impact = impact_of(entries, terms, question, position, event_id)
            if impact is not None:
                yield impact

    def entry_impacts(
        self,
        history: Sequence[Entry],
        index: int,
        terms: Mapping[str, TermsPublished],
        datasets: Sequence[str],
    ) -> list[tuple[Dataset, Impact]]:
        """Return the items of `datasets` that the event `history[index]` turned from
        allowed to denied (what the relay publishes on consent.dataset-impacts.v1).

        Decided just before and as of the event: at its recording (at its effective
        time for an expiry), as known when it was recorded.
        """
        entry = history[index]
        event = entry.event
        assert isinstance(event, SubjectEvent)
        moment = event.effective_at if isinstance(event, ConsentExpired) else event.recorded_at
        before, after = history[:index], history[: index + 1]
        found: list[tuple[Dataset, Impact]] = []
        for name in datasets:
            dataset = self._registered.get(name) or self._find(name)
            if dataset is None or dataset.entry.position > entry.position:
                continue
            self._registered[name] = dataset
            e = dataset.event
            for _, content, _, event_id, _ in self.datasets.items(name, [event.subject]):
                now = self.ledger.question(
                    event.subject, e.purpose, e.party, content, e.aspect, moment, event.recorded_at
                )
                impact = impact_of(after, terms, now, entry.position, event_id)
                if impact is None:
                    continue
                earlier = replace(now, at=moment - _INSTANT, known_at=event.recorded_at - _INSTANT)
                if decide(before, terms, earlier, entry.position).allowed:
                    found.append((dataset, impact))
        return found

    def report(self, name: str) -> dict[str, Any]:
        """Return the training-content summary of a dataset (for a regulator)."""
        dataset = self.dataset(name)
        counts = self.datasets.summary(name)
        stored = self.log.checkpoint_at(dataset.event.tree_size)
        impacts = self.impacts(name)
        return {
            **dataset.to_json(),
            "items": sum(n for _, _, n in counts),
            "by_basis": _totals(counts, 0),
            "by_terms_version": _totals(counts, 1),
            "counts": [{"basis": b, "terms_version": t, "items": n} for b, t, n in counts],
            "checkpoint": stored.to_json() if stored is not None else None,
            "impacts_now": len(impacts["impacts"]),
            "as_of_position": impacts["position"],
        }


def _totals(counts: list[tuple[str, str | None, int]], column: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in counts:
        key = str(row[column]) if row[column] is not None else "none"
        totals[key] = totals.get(key, 0) + row[2]
    return totals


def _allowed_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    allowed = table.filter(table["allowed"])
    for s, c, b, e, t in zip(
        *(
            allowed[n].to_pylist()
            for n in ("subject", "content", "basis", "event_id", "terms_version")
        ),
        strict=True,
    ):
        yield (s, c if c is not None else CATALOGUE, b, e, t)


def _item_rows(table: pa.Table, items: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """Return each item's snapshot row; refuse an item the snapshot does not allow."""
    catalogue: dict[str, tuple[Any, ...]] = {}
    specific: dict[tuple[str, str], tuple[Any, ...]] = {}
    wanted = pa.array(sorted({s for s, _ in items}), pa.string())
    rows = table.filter(pc.is_in(table["subject"], value_set=wanted))
    for s, c, a, b, e, t in zip(*(rows[n].to_pylist() for n in rows.schema.names), strict=True):
        if c is None:
            catalogue[s] = (a, b, e, t)
        else:
            specific[(s, c)] = (a, b, e, t)
    out = []
    for subject, content in items:
        row = specific.get((subject, content)) or catalogue.get(subject)
        if row is None or not row[0]:
            raise InvalidInputError(
                f"item {subject},{content} is not allowed by the snapshot"
                f" ({row[1] if row else 'subject absent'}): a dataset holds only allowed items"
            )
        out.append((subject, content, row[1], row[2], row[3]))
    return out
