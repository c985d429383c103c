"""Maintain an append-only RFC 9162 Merkle tree incrementally over a store of perfect subtrees.

Node (level, index) is the root of the *perfect* subtree over the leaves
[index * 2**level, (index + 1) * 2**level); level 0 holds the leaf hashes. A node is
written once, when its last leaf is appended, and never changes afterwards, so the
store is append-only too and serves every tree size up to the number of appended
leaves: any subtree of RFC 9162 §2.1.1 (perfect or not) is the fold of at most
log2(n) + 1 perfect nodes, one per set bit of its size.

Every operation reads what it needs with a single ``NodeStore.get_many`` call, so a
SQL table ``(level, idx, hash)`` serves it with one query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, hash_children

__all__ = [
    "Frontier",
    "MemoryNodeStore",
    "MerkleTreeError",
    "MissingNodeError",
    "Node",
    "NodeConflictError",
    "NodeKey",
    "NodeStore",
    "TreeArgumentError",
    "append",
    "append_many",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proof_keys",
    "inclusion_proofs",
    "root",
]

NodeKey: TypeAlias = tuple[int, int]
"""The address (level, index) of a perfect subtree; see the module docstring."""


class MerkleTreeError(Exception):
    """Signal that a tree operation could not be carried out."""


class TreeArgumentError(MerkleTreeError, ValueError):
    """Signal an index, size or hash that breaks a stated precondition."""


class MissingNodeError(MerkleTreeError, LookupError):
    """Signal that the store lacks nodes the operation needs (tree smaller than asked)."""

    def __init__(self, keys: Sequence[NodeKey]) -> None:
        self.keys: tuple[NodeKey, ...] = tuple(keys)
        shown = ", ".join(f"(level={level}, index={index})" for level, index in self.keys[:4])
        more = f" and {len(self.keys) - 4} more" if len(self.keys) > 4 else ""
        super().__init__(f"node store lacks {len(self.keys)} node(s): {shown}{more}")


class NodeConflictError(MerkleTreeError, ValueError):
    """Signal an attempt to overwrite a stored node with a different hash."""

    def __init__(self, key: NodeKey, stored: bytes, given: bytes) -> None:
        self.key = key
        self.stored = stored
        self.given = given
        super().__init__(
            f"node (level={key[0]}, index={key[1]}) is immutable: "
            f"got {given.hex()}, want {stored.hex()} (already stored)"
        )


@dataclass(frozen=True, slots=True)
class Node:
    """Hold the hash of the perfect subtree at (level, index)."""

    level: int
    index: int
    hash: bytes

    @property
    def key(self) -> NodeKey:
        """Return the (level, index) address of this node."""
        return (self.level, self.index)


class NodeStore(Protocol):
    """Store perfect-subtree hashes by (level, index); the port a SQL table implements.

    A relational backend is one table ``(level INTEGER, idx BIGINT, hash BYTEA,
    PRIMARY KEY (level, idx))``: ``get_many`` is one ``SELECT ... WHERE (level, idx)
    IN (...)`` and ``put_many`` one batched ``INSERT``.
    """

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hash of each key present; absent keys are left out, not errors."""
        ...

    def put_many(self, nodes: Sequence[Node]) -> None:
        """Store nodes, all or none.

        Storing a node already present with the same hash is a no-op (so a replayed
        batch is harmless); with a different hash it must raise NodeConflictError,
        because a perfect subtree never changes.
        """
        ...


class MemoryNodeStore:
    """Keep nodes in a dict: the NodeStore for tests, tools and small in-process logs."""

    def __init__(self) -> None:
        """Create an empty store."""
        self._nodes: dict[NodeKey, bytes] = {}

    def __len__(self) -> int:
        """Return how many nodes are stored."""
        return len(self._nodes)

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hash of each key present; absent keys are left out."""
        return {key: self._nodes[key] for key in keys if key in self._nodes}

    def put_many(self, nodes: Sequence[Node]) -> None:
        """Store nodes, all or none; raise NodeConflictError if one would change."""
        for node in nodes:
            stored = self._nodes.get(node.key)
            if stored is not None and stored != node.hash:
                raise NodeConflictError(node.key, stored, node.hash)
        for node in nodes:
            self._nodes[node.key] = node.hash


@dataclass(frozen=True, slots=True)
class Frontier:
    """Hold the right edge of a tree: the perfect subtrees that cover its leaves.

    ``hashes`` are the roots of the perfect subtrees over [0, size), left to right,
    one per set bit of ``size`` from the highest bit down. This is all an append
    needs, so a writer that keeps its Frontier in memory appends any number of
    leaves without reading the store.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        """Check that there is one hash per set bit of size."""
        if self.size < 0:
            raise TreeArgumentError(f"frontier size: got {self.size}, want >= 0")
        if len(self.hashes) != self.size.bit_count():
            raise TreeArgumentError(
                f"frontier of size {self.size}: got {len(self.hashes)} hashes, "
                f"want {self.size.bit_count()} (one per set bit of the size)"
            )

    @classmethod
    def empty(cls) -> Frontier:
        """Return the frontier of the empty tree."""
        return cls(0, ())

    @classmethod
    def load(cls, store: NodeStore, size: int) -> Frontier:
        """Read the frontier of the tree of `size` leaves with one store read.

        Requires size >= 0 and at least `size` leaves appended to the store.
        """
        if size < 0:
            raise TreeArgumentError(f"tree size: got {size}, want >= 0")
        keys = _range_keys(0, size)
        found = _fetch(store, keys)
        return cls(size, tuple(found[key] for key in keys))

    def root(self) -> bytes:
        """Return MTH of the tree (RFC 9162 §2.1.1); EMPTY_ROOT when size is 0."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def append(self, leaf_hash: bytes) -> tuple[Frontier, list[Node]]:
        """Return the frontier after appending one leaf hash, and the nodes it creates.

        Requires len(leaf_hash) == HASH_SIZE. The nodes are the leaf at (0, size) and
        every perfect parent it completes: 1 + (trailing one bits of size) nodes.
        """
        return self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> tuple[Frontier, list[Node]]:
        """Return the frontier after appending leaf hashes in order, and the nodes created.

        Requires every leaf hash to be HASH_SIZE bytes. Costs O(log n) hashing per leaf
        and no store access; the caller stores the nodes (see append_many).
        """
        size = self.size
        stack = list(self.hashes)
        nodes: list[Node] = []
        for leaf_hash in leaf_hashes:
            _require_hash(leaf_hash, f"leaf hash {size}")
            nodes.append(Node(0, size, leaf_hash))
            node_hash, level, index = leaf_hash, 0, size
            # A right child (odd index) completes its parent; the left sibling is the
            # lowest perfect subtree on the frontier, i.e. the top of the stack.
            while index & 1:
                node_hash = hash_children(stack.pop(), node_hash)
                level, index = level + 1, index >> 1
                nodes.append(Node(level, index, node_hash))
            stack.append(node_hash)
            size += 1
        return Frontier(size, tuple(stack)), nodes


def append(store: NodeStore, size: int, leaf_hash: bytes) -> list[Node]:
    """Append one leaf hash to the tree of `size` leaves; store and return the new nodes.

    Requires `size` to be exactly the number of leaves already appended and
    len(leaf_hash) == HASH_SIZE. Reads O(log n) nodes in one call and writes the leaf
    at (0, size) plus every perfect parent it completes in one call. Replaying an
    append already done is a no-op; appending a different leaf at a taken index raises
    NodeConflictError.
    """
    return append_many(store, size, (leaf_hash,))


def append_many(store: NodeStore, size: int, leaf_hashes: Iterable[bytes]) -> list[Node]:
    """Append leaf hashes in order to the tree of `size` leaves; store and return new nodes.

    Requires `size` to be exactly the number of leaves already appended and every leaf
    hash to be HASH_SIZE bytes. One store read (the frontier, O(log n) nodes) and one
    store write for the whole batch, whatever its length.
    """
    _, nodes = Frontier.load(store, size).extend(leaf_hashes)
    if nodes:
        store.put_many(nodes)
    return nodes


def root(store: NodeStore, size: int) -> bytes:
    """Return MTH of the first `size` leaves (RFC 9162 §2.1.1); EMPTY_ROOT for size 0.

    Requires size >= 0 and at least `size` leaves appended. One read of O(log n) nodes.
    """
    return Frontier.load(store, size).root()


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]), the inclusion proof of RFC 9162 §2.1.3.1.

    Requires 0 <= index < size and at least `size` leaves appended. The proof lists
    sibling subtree hashes from the leaf up to the root. One read of O(log n) nodes.
    """
    return inclusion_proofs(store, (index,), size)[0]


def inclusion_proofs(store: NodeStore, indices: Sequence[int], size: int) -> list[list[bytes]]:
    """Return PATH(index, D[size]) of RFC 9162 §2.1.3.1 for each index, with one store read.

    Requires 0 <= index < size for every index and at least `size` leaves appended
    (MissingNodeError otherwise). Walking up from the leaf, each level contributes the
    subtree beside the leaf's ancestor, if that subtree holds leaves of the tree: a
    perfect node when it is complete, otherwise the right border
    [(size >> level) << level, size), the fold of the frontier's perfect subtrees below
    that level. O(log n) per proof; the tests check it against the RFC's recursion.
    """
    for index in indices:
        if not 0 <= index < size:
            raise TreeArgumentError(f"leaf index: got {index}, want 0 <= index < size ({size})")
    keys = inclusion_proof_keys(indices, size)
    nodes = _fetch(store, sorted(keys))
    height = (size - 1).bit_length() if size else 0
    # The frontier, lowest level first: (level, hash) per set bit of size.
    frontier = [
        (level, nodes[(level, (size >> level) - 1)])
        for level in range(size.bit_length())
        if size >> level & 1
    ]
    border: dict[int, bytes] = {}  # level -> MTH of the right border below that level
    for level in range(1, height + 1):
        below = [node_hash for lv, node_hash in reversed(frontier) if lv < level]
        if below:
            border[level] = _fold(below)
    proofs = []
    for index in indices:
        path = []
        for level in range(height):
            sibling = (index >> level) ^ 1
            if sibling << level >= size:
                continue  # no leaves beside: the ancestor is promoted a level up
            if (sibling + 1) << level <= size:
                path.append(nodes[(level, sibling)])
            else:
                path.append(border[level])
        proofs.append(path)
    return proofs


def inclusion_proof_keys(indices: Collection[int], size: int) -> set[NodeKey]:
    """Return the nodes the inclusion proofs of `indices` in a tree of `size` leaves read.

    Each proof reads the perfect sibling of its leaf's ancestor at every level, and, on
    the right edge of a tree whose size is not a power of two, the perfect subtrees of
    the frontier (one per set bit of size): at most 2 * bit_length(size) nodes for one
    index. Requires 0 <= index < size.
    """
    keys: set[NodeKey] = set()
    for level in range(size.bit_length()):
        if size >> level & 1:
            keys.add((level, (size >> level) - 1))
    for index in indices:
        for level in range(size.bit_length()):
            sibling = (index >> level) ^ 1
            if (sibling + 1) << level <= size:
                keys.add((level, sibling))
    return keys


def consistency_proof(store: NodeStore, size1: int, size2: int) -> list[bytes]:
    """Return PROOF(size1, D[size2]), the consistency proof of RFC 9162 §2.1.4.1.

    Requires 0 < size1 <= size2 and at least `size2` leaves appended; the proof is
    empty when size1 == size2. (RFC 9162 defines no proof from the empty tree: every
    tree is trivially consistent with it.) One read of O(log n) nodes.
    """
    if not 0 < size1 <= size2:
        raise TreeArgumentError(
            f"consistency sizes: got size1={size1}, size2={size2}, want 0 < size1 <= size2"
        )
    tail: list[tuple[int, int]] = []
    begin, end, m, complete = 0, size2, size1, True
    # Walk down SUBPROOF(m, D[begin:end], complete); `tail` collects the subtree hash
    # each level appends after its recursive part, outermost level first.
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            tail.append((begin + k, end))
            end = begin + k
        else:
            tail.append((begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    head = [] if complete else [(begin, end)]  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    return _range_hashes(store, head + tail[::-1])


def _split(n: int) -> int:
    """Return k, the largest power of two smaller than n (RFC 9162 §2.1.1). Requires n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(begin: int, end: int) -> list[NodeKey]:
    """Return the perfect subtrees, left to right, whose fold is MTH(D[begin:end]).

    Requires begin to be a multiple of the largest power of two <= end - begin, which
    holds for every subtree of RFC 9162's tree (and for begin == 0).
    """
    keys: list[NodeKey] = []
    width = end - begin
    for level in reversed(range(width.bit_length())):
        if width >> level & 1:
            keys.append((level, begin >> level))
            begin += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Return the hash of adjacent perfect subtrees, decreasing in size, as RFC 9162 splits them.

    Requires at least one hash. MTH splits at the largest power of two, which is the
    leftmost perfect subtree, so the fold runs right to left.
    """
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = hash_children(left, acc)
    return acc


def _range_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Return MTH of each leaf range, reading all the nodes they need in one call."""
    keys_per_range = [_range_keys(begin, end) for begin, end in ranges]
    found = _fetch(store, [key for keys in keys_per_range for key in keys])
    return [_fold([found[key] for key in keys]) for keys in keys_per_range]


def _fetch(store: NodeStore, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
    """Return the hashes of keys in one store read; raise MissingNodeError if any is absent."""
    if not keys:
        return {}
    found = store.get_many(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise MissingNodeError(missing)
    return found


def _require_hash(value: bytes, what: str) -> None:
    """Raise TreeArgumentError unless value is a HASH_SIZE-byte hash."""
    if len(value) != HASH_SIZE:
        raise TreeArgumentError(f"{what}: got {len(value)} bytes, want {HASH_SIZE}")
