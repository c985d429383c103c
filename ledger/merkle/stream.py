"""Check the inclusion proofs of every leaf of a tree in one pass over its leaves.

RFC 9162 §2.1.3.2 checks one proof by folding it up to the root: about log2(n)
hashes per leaf. When the proofs of *all* leaves 0 … n-1 arrive in order with the
leaves (a complete audit export), the tree itself can be rebuilt as they stream by,
with one hash per leaf plus one per interior node (about two per leaf), and each proof
checked by comparison against the rebuilt nodes instead of by hashing:

- a proof hash for leaf j at level k is the sibling of the node (k, j >> k) that holds
  j, where node (k, m) is the (possibly right-truncated) subtree over the leaves
  [m * 2**k, (m + 1) * 2**k) ∩ [0, n); a level whose sibling would start at or after
  n has no hash (RFC 9162's unbalanced tree);
- a *left* sibling is a perfect subtree of leaves already seen: it is on the compact
  range (the stack of perfect subtrees over [0, j)) and must equal it now;
- a *right* sibling covers leaves not yet seen: the proof's hash is kept as a claim and
  compared with the node when its last leaf arrives (or, for the truncated nodes of the
  right edge, when the stream ends), and every later proof naming that node must carry
  the same hash;
- at the end the rebuilt root must be the tree's root.

A proof accepted this way is the tree's true audit path, which is exactly when
``verify_inclusion`` accepts it against the root (barring a SHA-256 collision); the
property tests check the two against each other. State is O(log n): one node and at
most one claim per level. A mismatch raises a ProofError as soon as it is seen; since a
claim is settled only when its node is complete, the error may come at a later leaf
than the damaged one, so callers that must name the first bad leaf re-check with the
per-proof verifier (see ``ledger.verify``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, hash_children
from ledger.merkle.proofs import (
    HashLengthError,
    ProofError,
    ProofLengthError,
    ProofRangeError,
    RootMismatchError,
)

__all__ = ["OnePassChecker"]


class OnePassChecker:
    """Rebuild the tree of `size` leaves and `root` from its leaves, checking their proofs.

    Feed leaves 0, 1, … in order, each with its audit path, through ``add`` (the whole
    path) or ``add_head`` (only the hashes that differ from the previous leaf's path);
    then call ``finish``. Hash lengths are the caller's to guarantee for ``add_head``
    (it is the inner loop); ``add`` checks them.
    """

    __slots__ = ("_claims", "_count", "_left", "_root", "_size")

    def __init__(self, size: int, root: bytes) -> None:
        """Start checking a tree of `size` leaves (size >= 0) whose root is `root`."""
        if size < 0:
            raise ProofRangeError(f"tree size: got {size}, want >= 0")
        self._size = size
        self._root = root
        self._count = 0
        # _left[k]: the perfect node (k, (count >> k) - 1) when bit k of count is set.
        self._left: list[bytes | None] = [None] * max(size.bit_length(), 1)
        # _claims[k]: (node index, hash) that a proof gave for a right sibling at level k.
        self._claims: list[tuple[int, bytes] | None] = [None] * max(size.bit_length(), 1)

    @property
    def count(self) -> int:
        """Return how many leaves have been added."""
        return self._count

    def head_length(self) -> int:
        """Return how many hashes ``add_head`` wants for the next leaf (which must not be 0).

        The next leaf j shares the hashes of levels >= L with leaf j - 1, where
        L = bit_length(j ^ (j - 1)); below L it has a right sibling at each level k < L - 1
        that starts inside the tree (j + 2**k < n), then its left sibling at level L - 1.
        """
        j = self._count
        low = (j ^ (j - 1)).bit_length() - 1  # L - 1
        return 1 + min(low, (self._size - j - 1).bit_length())

    def add(self, leaf_hash: bytes, path: Sequence[bytes]) -> None:
        """Add the next leaf with its whole audit path; raise ProofError on a mismatch."""
        j, n = self._count, self._size
        if j >= n:
            raise ProofRangeError(f"leaf index: got {j}, want 0 <= index < size ({n})")
        for position, value in enumerate((leaf_hash, *path)):
            if len(value) != HASH_SIZE:
                what = "leaf hash" if position == 0 else f"inclusion proof[{position - 1}]"
                raise HashLengthError(f"{what}: got {len(value)} bytes, want {HASH_SIZE}")
        levels = _path_levels(j, n)
        if len(path) != len(levels):
            raise ProofLengthError("inclusion proof", len(path), len(levels))
        for level, value in zip(levels, path, strict=True):
            self._check_sibling(j, level, value)
        self._append(leaf_hash)

    def add_head(self, leaf_hash: bytes, head: Sequence[bytes]) -> None:
        """Add the next leaf j > 0 whose audit path is `head` followed by the previous
        leaf's path from its hash at level bit_length(j ^ (j - 1)) on: those hashes were
        checked with that leaf and name the same nodes for this one. Requires
        len(head) == head_length()."""
        j = self._count
        last = len(head) - 1
        for level in range(last):
            self._claim(level, (j >> level) + 1, head[level])
        low = (j ^ (j - 1)).bit_length() - 1
        if self._left[low] != head[last]:
            self._check_left(low, head[last])
        self._append(leaf_hash)

    def finish(self) -> None:
        """Settle the claims on the right edge and check the root; raise ProofError if not."""
        n = self._size
        if self._count != n:
            raise ProofLengthError("leaves", self._count, n)
        acc: bytes | None = None
        for level in range(len(self._left)):
            if acc is not None:
                self._settle(level, n >> level, acc)
            if n >> level & 1:
                node = self._left[level]
                assert node is not None  # bit `level` of count is set
                acc = node if acc is None else hash_children(node, acc)
        for level, claim in enumerate(self._claims):
            if claim is not None:
                raise ProofError(
                    f"a proof names node (level={level}, index={claim[0]}) that the tree "
                    f"of size {n} does not have"
                )
        computed = EMPTY_ROOT if acc is None else acc
        if computed != self._root:
            raise RootMismatchError(
                f"root rebuilt from the leaves (tree size {n})", computed, self._root
            )

    def _check_sibling(self, j: int, level: int, value: bytes) -> None:
        if j >> level & 1:
            self._check_left(level, value)
        else:
            self._claim(level, (j >> level) + 1, value)

    def _check_left(self, level: int, value: bytes) -> None:
        node = self._left[level]
        if node != value:
            got, want = value.hex(), node.hex() if node is not None else "none"
            raise ProofError(
                f"left sibling at level {level} of leaf {self._count}: got {got}, want {want} "
                "(rebuilt from the leaves before it)"
            )

    def _claim(self, level: int, index: int, value: bytes) -> None:
        claim = self._claims[level]
        if claim is None:
            self._claims[level] = (index, value)
        elif claim[0] != index or claim[1] != value:
            raise ProofError(
                f"right sibling (level={level}, index={index}) in the proof of leaf "
                f"{self._count}: got {value.hex()}, want {claim[1].hex()} (node "
                f"index {claim[0]}, from an earlier proof)"
            )

    def _settle(self, level: int, index: int, node: bytes) -> None:
        claim = self._claims[level]
        if claim is not None and claim[0] == index:
            if claim[1] != node:
                raise ProofError(
                    f"node (level={level}, index={index}): proofs gave {claim[1].hex()}, "
                    f"the leaves give {node.hex()}"
                )
            self._claims[level] = None

    def _append(self, leaf_hash: bytes) -> None:
        j = self._count
        node, level = leaf_hash, 0
        left, claims = self._left, self._claims
        while True:
            claim = claims[level]
            if claim is not None and claim[0] == j >> level:
                self._settle(level, j >> level, node)
            if not j >> level & 1:
                break
            sibling = left[level]
            assert sibling is not None  # bit `level` of j is set
            left[level] = None
            node = hash_children(sibling, node)
            level += 1
        if level < len(left):
            left[level] = node
        self._count = j + 1


def _path_levels(j: int, n: int) -> list[int]:
    """Return the levels, lowest first, at which leaf j of a tree of n has a proof hash."""
    levels = []
    level = 0
    while (1 << level) < n:
        if j >> level & 1 or (((j >> level) + 1) << level) < n:
            levels.append(level)
        level += 1
    return levels
