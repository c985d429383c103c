"""Keep the ledger's RFC 9162 transparency log as a tracked projection, and serve its proofs.

Leaves are the ledger's events in position order, numbered 0, 1, 2 … without gaps
(positions may have gaps on PostgreSQL). The log lives in four tables beside the
event store, on SQLite and PostgreSQL alike:

- ``merkle_leaves(leaf_index PK, position UNIQUE, event_id, leaf_hash)``: level 0 of
  the tree, with the ledger position and event id of each leaf;
- ``merkle_nodes(level, idx, hash, PK(level, idx))``: every *perfect* interior
  subtree (level >= 1), written once when its last leaf arrives (``ledger.merkle.tree``);
- ``checkpoints(tree_size PK, root_hash, timestamp, log_id, signature, public_key,
  note)``: the signed tree heads, in both encodings;
- ``merkle_tracking(id = 1, position, tree_size)``: how far the log has read the ledger.

`LogService.catch_up` appends a batch of leaves, their interior nodes and the new
tracking row in ONE transaction, so a crash never leaves a leaf without its nodes or
a leaf counted twice; concurrent catch-ups are serialised by the tracking row (a
writer that lost the race drops its batch and reads on). Appending a leaf costs
O(log n): one read of the frontier and the nodes the leaf completes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog
from eventsourcing.persistence import Notification
from eventsourcing.utils import TopicError

from ledger.application import ConsentLedger
from ledger.backoff import store_outage
from ledger.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SigningKey,
    format_timestamp,
    parse_timestamp,
    sign_checkpoint,
    to_signed_note,
)
from ledger.errors import InvalidInputError, NotFoundError, StoreUnavailableError
from ledger.events import Entry
from ledger.merkle import (
    Frontier,
    MerkleTreeError,
    Node,
    NodeConflictError,
    NodeKey,
    NodeStore,
    TreeArgumentError,
    consistency_proof,
    inclusion_proofs,
)
from ledger.records import RecordError, leaf_hash_of, record_of
from projections.database import Cursor, Database

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "LeafRow",
    "LogAnswers",
    "LogNotReadyError",
    "LogService",
    "ProofRequestError",
    "SqlNodeStore",
    "StoredCheckpoint",
    "batch_inclusion_proofs",
    "decode_entry",
]

_T = TypeVar("_T")
_log = structlog.get_logger("projections.merkle_log")

DEFAULT_BATCH: Final = 1000  # leaves per catch-up transaction
_SQLITE_KEYS_PER_QUERY: Final = 400  # 2 parameters per key, far below SQLite's 32766
DECODE_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, TopicError)
"""What decoding a stored event raises when its bytes were altered (see decode_entry)."""


class ProofRequestError(InvalidInputError):
    """Refuse a proof request whose sizes or indices can never be proven (HTTP 422)."""

    title = "Invalid proof request"


class LogNotReadyError(NotFoundError):
    """Signal that the log does not hold what was asked yet: a position, size or checkpoint."""

    title = "Not in the log"


@dataclass(frozen=True, slots=True)
class LeafRow:
    """Hold one leaf of the log: its index, ledger position, event id and leaf hash."""

    leaf_index: int
    position: int
    event_id: str
    leaf_hash: bytes


@dataclass(frozen=True)
class InclusionProof:
    """Hold an RFC 9162 §2.1.3 inclusion proof of one ledger event in a tree size."""

    leaf_index: int
    position: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """Return the answer of `GET /v1/ledger/proofs/inclusion` (hashes in lowercase hex)."""
        return {
            "leaf_index": self.leaf_index,
            "position": self.position,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
            "root_hash": self.root_hash.hex(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """Hold an RFC 9162 §2.1.4 consistency proof between two tree sizes, with both roots."""

    first: int
    second: int
    proof: list[bytes]
    first_root: bytes
    second_root: bytes

    def to_json(self) -> dict[str, Any]:
        """Return the answer of `GET /v1/ledger/proofs/consistency` (and consistency.json)."""
        return {
            "first": self.first,
            "second": self.second,
            "proof": [h.hex() for h in self.proof],
            "first_root": self.first_root.hex(),
            "second_root": self.second_root.hex(),
        }


@dataclass(frozen=True)
class StoredCheckpoint:
    """Hold a signed checkpoint as stored: the JSON form's parts and the signed note."""

    signed: SignedCheckpoint
    note: str

    @property
    def checkpoint(self) -> Checkpoint:
        """Return the tree head this vouches for."""
        return self.signed.checkpoint

    @property
    def tree_size(self) -> int:
        """Return the tree size of the checkpoint."""
        return self.signed.checkpoint.tree_size

    def to_json(self) -> dict[str, str | int]:
        """Return checkpoint.json of BRIEF §5: exactly its six fields."""
        return self.signed.to_json()

    def to_published_json(self) -> dict[str, str | int]:
        """Return checkpoint.json plus `note`, the C2SP signed note (HTTP, Kafka, CLI)."""
        return {**self.signed.to_json(), "note": self.note}


class SqlNodeStore:
    """Serve the NodeStore port from the log tables, inside one transaction's cursor.

    Level 0 lives in ``merkle_leaves`` (each leaf row also carries its position, so
    only the projection writes it); levels >= 1 live in ``merkle_nodes``. Every
    get_many is at most two queries, whatever the number of keys on PostgreSQL.
    """

    def __init__(self, cursor: Cursor, dialect: str) -> None:
        """Bind the store to an open cursor of the ledger database ("sqlite" or "postgres")."""
        self._cursor = cursor
        self._dialect = dialect

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hash of each key present; absent keys are left out."""
        leaves = [index for level, index in keys if level == 0]
        inner = [(level, index) for level, index in keys if level > 0]
        found: dict[NodeKey, bytes] = {}
        cursor = self._cursor
        if self._dialect == "postgres":
            if leaves:
                cursor.execute(
                    "SELECT leaf_index, leaf_hash FROM merkle_leaves "
                    "WHERE leaf_index = ANY(%s::bigint[])",
                    [leaves],
                )
                found.update({(0, int(i)): bytes(h) for i, h in cursor.fetchall()})
            if inner:
                cursor.execute(
                    "SELECT n.level, n.idx, n.hash FROM merkle_nodes n "
                    "JOIN unnest(%s::integer[], %s::bigint[]) AS k(level, idx) "
                    "ON n.level = k.level AND n.idx = k.idx",
                    [[k[0] for k in inner], [k[1] for k in inner]],
                )
                found.update({(int(lv), int(i)): bytes(h) for lv, i, h in cursor.fetchall()})
            return found
        for chunk in _chunks(leaves, _SQLITE_KEYS_PER_QUERY):
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                f"SELECT leaf_index, leaf_hash FROM merkle_leaves WHERE leaf_index IN ({marks})",
                chunk,
            )
            found.update({(0, int(i)): bytes(h) for i, h in cursor.fetchall()})
        # One level per statement: SQLite plans `level = ? AND idx IN (...)` on the primary
        # key, whereas a row-value IN over VALUES scans the whole table.
        by_level: dict[int, list[int]] = {}
        for level, index in inner:
            by_level.setdefault(level, []).append(index)
        for level, indices in by_level.items():
            for chunk in _chunks(indices, _SQLITE_KEYS_PER_QUERY):
                marks = ",".join("?" * len(chunk))
                cursor.execute(
                    f"SELECT idx, hash FROM merkle_nodes WHERE level = ? AND idx IN ({marks})",
                    [level, *chunk],
                )
                found.update({(level, int(i)): bytes(h) for i, h in cursor.fetchall()})
        return found

    def put_many(self, nodes: Sequence[Node]) -> None:
        """Store interior nodes; a replayed equal node is a no-op, a different one a conflict.

        Level-0 nodes are not written here: the projection writes each leaf row with
        its position and event id. A level-0 node given here must match its leaf row
        (NodeConflictError otherwise; MerkleTreeError if the row is missing).
        """
        stored = self.get_many([node.key for node in nodes])
        fresh: list[Node] = []
        for node in nodes:
            held = stored.get(node.key)
            if held is not None and held != node.hash:
                raise NodeConflictError(node.key, held, node.hash)
            if held is None and node.level == 0:
                raise MerkleTreeError(
                    f"leaf {node.index}: no merkle_leaves row; leaves are written by the log "
                    "projection with their position, not through put_many"
                )
            if held is None:
                fresh.append(node)
        if fresh:
            self._cursor.executemany(
                _sql(self._dialect, "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)"),
                [(node.level, node.index, node.hash) for node in fresh],
            )


def batch_inclusion_proofs(
    store: NodeStore, indices: Sequence[int], size: int
) -> list[list[bytes]]:
    """Return PATH(index, D[size]) for many leaves with one store read (RFC 9162 §2.1.3.1).

    `ledger.merkle.inclusion_proofs`, the one inclusion-proof routine, with a bad index
    reported as ProofRequestError (a client's error) rather than TreeArgumentError.
    Requires 0 <= index < size and at least `size` leaves in the store.
    """
    try:
        return inclusion_proofs(store, indices, size)
    except TreeArgumentError as error:
        raise ProofRequestError(str(error)) from None


def decode_entry(ledger: ConsentLedger, notification: Notification) -> Entry:
    """Return the ledger entry of a stored event; raise RecordError if its bytes do not decode.

    A stored event whose state or topic was altered may fail to decode in many ways
    (bad JSON or UTF-8, unknown topic, missing or extra fields); each is reported as
    the same finding: this position cannot be read as a ledger event.
    """
    try:
        return ledger.entry(notification)
    except DECODE_ERRORS as error:
        raise RecordError(
            f"stored event at position {notification.id} does not decode: "
            f"{type(error).__name__}: {error}"
        ) from None


class LogService:
    """Maintain the transparency log of a ledger and answer for it: checkpoints and proofs.

    One per deployment, wired by `services.bootstrap`. Construction does no I/O; the
    tables are created on first use (or by `create_tables`). The projection is only as
    fresh as its last `catch_up`: entrypoints that must cover the ledger's head (export,
    CLI proofs) call catch_up first; `LogAnswers` (HTTP) catches up briefly per request.
    """

    def __init__(
        self,
        ledger: ConsentLedger,
        database: Database,
        key: SigningKey,
        *,
        log_id: str,
        every_events: int = 1000,
        every_seconds: float = 60.0,
    ) -> None:
        """Wire the log; `log_id` is also the signed note's origin and key name."""
        if not log_id or any(char.isspace() or char == "+" for char in log_id):
            raise InvalidInputError(
                f"log id {log_id!r}: want a non-empty name without spaces or '+' "
                "(it is the C2SP checkpoint origin)"
            )
        if every_events < 1 or every_seconds <= 0:
            raise InvalidInputError(
                f"checkpoint policy: got every {every_events} events / {every_seconds} s, "
                "want at least 1 event and more than 0 s"
            )
        self.ledger = ledger
        self.database = database
        self.key = key
        self.log_id = log_id
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._tables_ready = False

    # ------------------------------------------------------------ the projection

    def create_tables(self) -> None:
        """Create the log's tables and its tracking row if they do not exist."""
        blob, big = (
            ("BYTEA", "BIGINT") if self.database.dialect == "postgres" else ("BLOB", "INTEGER")
        )
        statements = [
            "CREATE TABLE IF NOT EXISTS merkle_leaves ("
            f" leaf_index {big} PRIMARY KEY, position {big} NOT NULL UNIQUE,"
            f" event_id TEXT NOT NULL, leaf_hash {blob} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_nodes ("
            f" level INTEGER NOT NULL, idx {big} NOT NULL, hash {blob} NOT NULL,"
            " PRIMARY KEY (level, idx))"
            + (" WITHOUT ROWID" if self.database.dialect == "sqlite" else ""),
            "CREATE TABLE IF NOT EXISTS checkpoints ("
            f" tree_size {big} PRIMARY KEY, root_hash {blob} NOT NULL,"
            " timestamp TEXT NOT NULL, log_id TEXT NOT NULL,"
            f" signature {blob} NOT NULL, public_key {blob} NOT NULL, note TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_tracking ("
            f" id INTEGER PRIMARY KEY CHECK (id = 1), position {big} NOT NULL,"
            f" tree_size {big} NOT NULL)",
            "INSERT INTO merkle_tracking (id, position, tree_size) VALUES (1, 0, 0)"
            " ON CONFLICT (id) DO NOTHING",
        ]
        self.database.create_tables("merkle_log", statements)
        self._tables_ready = True

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """Open a transaction on the ledger database, creating the tables on first use."""
        if not self._tables_ready:
            self.create_tables()
        with self.database.transaction() as cursor:
            yield cursor

    def tracking(self) -> tuple[int, int]:
        """Return (last ledger position logged, tree size): how far the log has read."""
        with self._transaction() as cursor:
            return self._tracking(cursor, lock=False)

    def tree_size(self) -> int:
        """Return the number of leaves logged so far."""
        return self.tracking()[1]

    def catch_up(
        self,
        *,
        batch_size: int = DEFAULT_BATCH,
        deadline: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Log every ledger event not logged yet, in batches; return how many were appended.

        Each batch is one transaction (leaves, nodes, tracking). A checkpoint is taken
        after each batch and at the end whenever the policy says one is due.
        `deadline` is a time.monotonic() instant after which no new batch starts.
        `progress` gets the number of leaves appended so far. Raises RecordError if a
        stored event cannot be rendered (then nothing of its batch is written).
        """
        if batch_size < 1:
            raise InvalidInputError(f"batch size: got {batch_size}, want >= 1")
        appended = 0
        while deadline is None or time.monotonic() < deadline:
            position, size = self.tracking()
            notifications = self.ledger.recorder.select_notifications(
                start=position, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                break
            rows = []
            for offset, notification in enumerate(notifications):
                entry = decode_entry(self.ledger, notification)
                leaf_hash = leaf_hash_of(record_of(entry, size + offset))
                rows.append(
                    LeafRow(size + offset, entry.position, str(entry.event.event_id), leaf_hash)
                )
            if self._append(position, size, rows):
                appended += len(rows)
                if progress is not None:
                    progress(appended)
                self.take_checkpoint()
        self.take_checkpoint()
        return appended

    def run(self, stop: threading.Event, *, poll_seconds: float = 1.0) -> None:
        """Keep the log caught up and checkpointed until `stop` is set (a worker's loop).

        Every `poll_seconds` it catches up and takes the checkpoint the policy asks for,
        so time-based checkpoints are signed even when no event arrives. An unreachable
        store is logged and retried with back-off; any other LedgerError ends the loop.
        """
        retrying = store_outage(poll_seconds).retrying()
        while not stop.is_set():
            try:
                self.catch_up()
            except StoreUnavailableError as error:
                _log.warning("merkle_log_store_unavailable", error=error.detail)
                stop.wait(retrying.failed())
                continue
            retrying.succeeded()
            stop.wait(poll_seconds)

    def _append(self, position: int, size: int, rows: Sequence[LeafRow]) -> bool:
        """Append rows after (position, size) in one transaction; False if another writer won."""
        with self._transaction() as cursor:
            if self._tracking(cursor, lock=True) != (position, size):
                return False
            store = SqlNodeStore(cursor, self.database.dialect)
            _, nodes = Frontier.load(store, size).extend(row.leaf_hash for row in rows)
            cursor.executemany(
                self._sql(
                    "INSERT INTO merkle_leaves (leaf_index, position, event_id, leaf_hash) "
                    "VALUES (?, ?, ?, ?)"
                ),
                [(r.leaf_index, r.position, r.event_id, r.leaf_hash) for r in rows],
            )
            # The leaf rows are level 0; only the interior nodes go to merkle_nodes.
            store.put_many([node for node in nodes if node.level > 0])
            cursor.execute(
                self._sql("UPDATE merkle_tracking SET position = ?, tree_size = ? WHERE id = 1"),
                [rows[-1].position, size + len(rows)],
            )
        return True

    def _tracking(self, cursor: Cursor, *, lock: bool) -> tuple[int, int]:
        """Read the tracking row; with lock, hold it until the transaction ends (PostgreSQL)."""
        suffix = " FOR UPDATE" if lock and self.database.dialect == "postgres" else ""
        cursor.execute(f"SELECT position, tree_size FROM merkle_tracking WHERE id = 1{suffix}")
        row = cursor.fetchone()
        if row is None:
            raise LogNotReadyError("the log's tables are not created (merkle_tracking is empty)")
        return int(row[0]), int(row[1])

    # ------------------------------------------------------------- checkpoints

    def checkpoint(self) -> StoredCheckpoint | None:
        """Return the latest signed checkpoint, or None if none was taken yet."""
        rows = self._checkpoint_rows("ORDER BY tree_size DESC LIMIT 1", [])
        return rows[0] if rows else None

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        """Return the signed checkpoint of exactly `tree_size`, or None."""
        rows = self._checkpoint_rows("WHERE tree_size = ?", [tree_size])
        return rows[0] if rows else None

    def checkpoints_after(self, tree_size: int, limit: int = 1000) -> list[dict[str, str | int]]:
        """Return up to `limit` signed checkpoints with a larger tree size, oldest first.

        Each is checkpoint.json plus `note` (StoredCheckpoint.to_published_json): what
        the Kafka relay publishes on consent.checkpoints.v1, keyed by log id, resuming
        from the tree size it published last.
        """
        rows = self._checkpoint_rows(
            "WHERE tree_size > ? ORDER BY tree_size LIMIT ?", [tree_size, limit]
        )
        return [row.to_published_json() for row in rows]

    def iter_checkpoints(self, batch: int = 1000) -> Iterator[StoredCheckpoint]:
        """Yield every stored checkpoint, by increasing tree size."""
        after = -1
        while True:
            rows = self._checkpoint_rows(
                "WHERE tree_size > ? ORDER BY tree_size LIMIT ?", [after, batch]
            )
            if not rows:
                return
            yield from rows
            after = rows[-1].tree_size

    def take_checkpoint(self, *, force: bool = False) -> StoredCheckpoint | None:
        """Sign and store a checkpoint of the logged tree if one is due; return it, or None.

        Due when the tree grew since the latest checkpoint by `every_events` leaves or
        more, or the latest is `every_seconds` old or older; the first checkpoint is
        due as soon as the tree has a leaf. With force, due whenever the tree grew (or
        no checkpoint exists at all, even of the empty tree). Never two checkpoints
        of one size: a concurrent taker's is returned instead.
        """
        size = self.tree_size()
        latest = self.checkpoint()
        if latest is not None and latest.tree_size >= size:
            return None
        if not force and not self._due(latest, size):
            return None
        with self._transaction() as cursor:
            root = Frontier.load(SqlNodeStore(cursor, self.database.dialect), size).root()
        checkpoint = Checkpoint(self.log_id, size, root, self.ledger.clock.now())
        signed = sign_checkpoint(checkpoint, self.key)
        note = to_signed_note(checkpoint, self.key, self.log_id)
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO checkpoints (tree_size, root_hash, timestamp, log_id, signature,"
                    " public_key, note) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tree_size)"
                    " DO NOTHING"
                ),
                [
                    size,
                    root,
                    format_timestamp(checkpoint.timestamp),
                    self.log_id,
                    signed.signature,
                    signed.public_key,
                    note,
                ],
            )
        return self.checkpoint_at(size)

    def _due(self, latest: StoredCheckpoint | None, size: int) -> bool:
        """Tell whether the policy asks for a checkpoint of `size` now."""
        if latest is None:
            return size > 0
        grown = size - latest.tree_size
        age = (self.ledger.clock.now() - latest.checkpoint.timestamp).total_seconds()
        return grown >= self.every_events or age >= self.every_seconds

    def head_checkpoint(self) -> StoredCheckpoint:
        """Return a signed checkpoint of the whole logged tree, signing one if needed."""
        taken = self.take_checkpoint(force=True)
        latest = taken or self.checkpoint()
        assert latest is not None  # force always leaves one
        return latest

    def _checkpoint_rows(self, tail: str, params: list[Any]) -> list[StoredCheckpoint]:
        """Return the checkpoints a WHERE/ORDER tail selects."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT log_id, tree_size, root_hash, timestamp, public_key, signature, note "
                    f"FROM checkpoints {tail}"
                ),
                params,
            )
            rows = cursor.fetchall()
        return [
            StoredCheckpoint(
                SignedCheckpoint(
                    Checkpoint(str(lid), int(size), bytes(root), parse_timestamp(str(ts))),
                    bytes(key),
                    bytes(signature),
                ),
                str(note),
            )
            for lid, size, root, ts, key, signature, note in rows
        ]

    # ------------------------------------------------------------------ proofs

    def leaf_at(self, position: int) -> LeafRow:
        """Return the leaf of a ledger position; LogNotReadyError if it is not logged."""
        found = self.leaves_at_positions([position])
        if position not in found:
            logged, size = self.tracking()
            raise LogNotReadyError(
                f"position {position} is not a leaf of the log: no event there, or not "
                f"logged yet (the log holds {size} leaves, up to position {logged})"
            )
        return found[position]

    def leaves_at_positions(self, positions: Sequence[int]) -> dict[int, LeafRow]:
        """Return the leaves of those positions that are logged, by position."""
        found: dict[int, LeafRow] = {}
        with self._transaction() as cursor:
            for chunk in _chunks(list(positions), _SQLITE_KEYS_PER_QUERY):
                marks = ",".join("?" * len(chunk))
                cursor.execute(
                    self._sql(
                        "SELECT leaf_index, position, event_id, leaf_hash FROM merkle_leaves "
                        f"WHERE position IN ({marks})"
                    ),
                    chunk,
                )
                for row in cursor.fetchall():
                    leaf = _leaf(row)
                    found[leaf.position] = leaf
        return found

    def leaves(self, start: int, stop: int) -> list[LeafRow]:
        """Return the leaves with start <= leaf_index < stop, in order."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT leaf_index, position, event_id, leaf_hash FROM merkle_leaves "
                    "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index"
                ),
                [start, stop],
            )
            return [_leaf(row) for row in cursor.fetchall()]

    def leaf_with_event_id(self, event_id: str) -> LeafRow | None:
        """Return the leaf holding an event id, or None (a scan; for audit findings only)."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT leaf_index, position, event_id, leaf_hash FROM merkle_leaves "
                    "WHERE event_id = ?"
                ),
                [event_id],
            )
            row = cursor.fetchone()
        return _leaf(row) if row is not None else None

    def root(self, size: int) -> bytes:
        """Return the root hash of the first `size` leaves. Requires 0 <= size <= tree size."""
        self._require_size(size)
        with self._transaction() as cursor:
            return Frontier.load(SqlNodeStore(cursor, self.database.dialect), size).root()

    def inclusion(self, position: int, tree_size: int | None = None) -> InclusionProof:
        """Prove that the event at ledger `position` is in the tree of `tree_size` leaves.

        The HTTP route and the CLI take a ledger position (what a write's receipt
        shows); the proof names the leaf_index it maps to. With tree_size None, the
        latest signed checkpoint's size. Raises LogNotReadyError when the position is
        not logged, no signed checkpoint covers it yet (tree_size None) or tree_size
        exceeds the log, and ProofRequestError when the event was logged after an
        explicit tree_size.
        """
        leaf = self.leaf_at(position)
        if tree_size is None:
            latest = self.checkpoint()
            if latest is None or latest.tree_size <= leaf.leaf_index:
                signed = f"tree size {latest.tree_size}" if latest else "none yet"
                raise LogNotReadyError(
                    f"position {position} is leaf {leaf.leaf_index}, logged after the latest "
                    f"signed checkpoint ({signed}); retry after the next checkpoint, or ask "
                    "for an explicit tree_size"
                )
            tree_size = latest.tree_size
        self._require_size(tree_size)
        if leaf.leaf_index >= tree_size:
            raise ProofRequestError(
                f"position {position} is leaf {leaf.leaf_index}, not in a tree of "
                f"{tree_size} leaves (want tree_size > {leaf.leaf_index})"
            )
        with self._transaction() as cursor:
            store = SqlNodeStore(cursor, self.database.dialect)
            path = batch_inclusion_proofs(store, [leaf.leaf_index], tree_size)[0]
            root = Frontier.load(store, tree_size).root()
        return InclusionProof(leaf.leaf_index, position, tree_size, leaf.leaf_hash, path, root)

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        """Return the inclusion proofs of many leaves in one tree, with one batched read.

        Requires 0 <= index < size <= tree size for every index.
        """
        if not indices:
            return []
        self._require_size(size)
        with self._transaction() as cursor:
            return batch_inclusion_proofs(
                SqlNodeStore(cursor, self.database.dialect), indices, size
            )

    def consistency(self, first: int, second: int) -> ConsistencyProof:
        """Prove that the tree of `first` leaves is a prefix of the tree of `second` leaves.

        Requires 0 < first <= second <= tree size: a proof from the empty tree is
        refused (every tree extends it; RFC 9162 defines none) with ProofRequestError,
        as is first > second; LogNotReadyError when second exceeds the log.
        """
        if first < 1 or first > second:
            raise ProofRequestError(
                f"consistency sizes: got first={first}, second={second}, "
                "want 0 < first <= second (no proof exists from the empty tree)"
            )
        self._require_size(second)
        with self._transaction() as cursor:
            store = SqlNodeStore(cursor, self.database.dialect)
            proof = consistency_proof(store, first, second)
            first_root = Frontier.load(store, first).root()
            second_root = Frontier.load(store, second).root()
        return ConsistencyProof(first, second, proof, first_root, second_root)

    def _require_size(self, size: int) -> None:
        """Refuse a tree size the log cannot serve (yet)."""
        if size < 0:
            raise ProofRequestError(f"tree size: got {size}, want >= 0")
        logged = self.tree_size()
        if size > logged:
            raise LogNotReadyError(
                f"tree size {size}: the log holds {logged} leaves (not logged yet)"
            )

    def _sql(self, statement: str) -> str:
        """Return a statement with `?` placeholders in the database's dialect."""
        return _sql(self.database.dialect, statement)


def _sql(dialect: str, statement: str) -> str:
    """Return statement with `?` placeholders in the dialect's style."""
    return statement if dialect == "sqlite" else statement.replace("?", "%s")


def _leaf(row: Sequence[Any]) -> LeafRow:
    """Return a LeafRow from a (leaf_index, position, event_id, leaf_hash) row."""
    return LeafRow(int(row[0]), int(row[1]), str(row[2]), bytes(row[3]))


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """Yield consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LogAnswers:
    """Answer the HTTP routes (services.http.routes.ledger.TransparencyLog) with JSON objects.

    Each answer first catches the log up for at most `catch_up_seconds`, so that a
    proof for a write just made is available without a background worker; a log far
    behind answers from what it holds (404 for what it does not yet).
    """

    def __init__(self, log: LogService, *, catch_up_seconds: float = 1.0) -> None:
        """Serve `log`; `catch_up_seconds` bounds the catch-up work done per request."""
        self.log = log
        self.catch_up_seconds = catch_up_seconds

    def checkpoint(self) -> dict[str, str | int]:
        """Return the latest signed checkpoint: checkpoint.json plus `note` (signed note)."""
        self._fresh()
        latest = self.log.checkpoint()
        if latest is None:
            raise LogNotReadyError("no signed checkpoint yet (the ledger is empty)")
        return latest.to_published_json()

    def inclusion_proof(self, position: int, tree_size: int | None) -> dict[str, Any]:
        """Return the inclusion proof of the event at `position` (LogService.inclusion)."""
        self._fresh()
        return self.log.inclusion(position, tree_size).to_json()

    def consistency_proof(self, first: int, second: int | None) -> dict[str, Any]:
        """Return the consistency proof from `first` to `second` (None: latest checkpoint)."""
        self._fresh()
        if second is None:
            latest = self.log.checkpoint()
            if latest is None:
                raise LogNotReadyError("no signed checkpoint yet (the ledger is empty)")
            second = latest.tree_size
        return self.log.consistency(first, second).to_json()

    def _fresh(self) -> None:
        """Catch the log up within the time budget."""
        self.log.catch_up(deadline=time.monotonic() + self.catch_up_seconds)
