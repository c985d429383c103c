"""Serve the Merkle tree's NodeStore port from the log's SQL tables."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Final, TypeVar

from ledger.merkle import (
    MerkleTreeError,
    Node,
    NodeConflictError,
    NodeKey,
    NodeStore,
    TreeArgumentError,
    inclusion_proofs,
)
from projections.database import Cursor, placeholders
from projections.merkle_log.types import ProofRequestError

__all__ = ["SQLITE_KEYS_PER_QUERY", "SqlNodeStore", "batch_inclusion_proofs", "chunks"]

_T = TypeVar("_T")

SQLITE_KEYS_PER_QUERY: Final = 400  # 2 parameters per key, far below SQLite's 32766


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
        for chunk in chunks(leaves, SQLITE_KEYS_PER_QUERY):
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
            for chunk in chunks(indices, SQLITE_KEYS_PER_QUERY):
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
                placeholders(
                    self._dialect, "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)"
                ),
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


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """Yield consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
