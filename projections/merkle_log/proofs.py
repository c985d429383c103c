"""Find the log's leaves and prove inclusion and consistency against its tree."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle import Frontier, consistency_proof
from projections.merkle_log.checkpoints import LogCheckpoints
from projections.merkle_log.node_store import (
    SQLITE_KEYS_PER_QUERY,
    SqlNodeStore,
    batch_inclusion_proofs,
    chunks,
)
from projections.merkle_log.types import (
    ConsistencyProof,
    InclusionProof,
    LeafRow,
    LogNotReadyError,
    ProofRequestError,
    leaf_of,
)

__all__ = ["LogProofs"]


class LogProofs(LogCheckpoints):
    """Answer for leaves and proofs (against the checkpoints the base class keeps)."""

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
            for chunk in chunks(list(positions), SQLITE_KEYS_PER_QUERY):
                marks = ",".join("?" * len(chunk))
                cursor.execute(
                    self._sql(
                        "SELECT leaf_index, position, event_id, leaf_hash FROM merkle_leaves "
                        f"WHERE position IN ({marks})"
                    ),
                    chunk,
                )
                for row in cursor.fetchall():
                    leaf = leaf_of(row)
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
            return [leaf_of(row) for row in cursor.fetchall()]

    def nodes(self, level: int, start: int, stop: int) -> list[bytes]:
        """Return the stored hashes of the perfect subtrees at `level` >= 1 with start <= idx
        < stop, in order (those not complete yet are missing): what tiles are made of."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT hash FROM merkle_nodes WHERE level = ? AND idx >= ? AND idx < ?"
                    " ORDER BY idx"
                ),
                [level, start, stop],
            )
            return [bytes(row[0]) for row in cursor.fetchall()]

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
        return leaf_of(row) if row is not None else None

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
