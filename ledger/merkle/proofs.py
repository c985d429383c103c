"""Verify RFC 9162 inclusion (§2.1.3.2) and consistency (§2.1.4.2) proofs.

The loops below follow the RFC's numbered steps literally, with its variable names
(fn, sn, r, fr, sr), so that they can be checked against the text line by line. A
failed check raises a ProofError subclass whose message says what was got and what
was wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, hash_children

__all__ = [
    "HashLengthError",
    "ProofError",
    "ProofLengthError",
    "ProofRangeError",
    "RootMismatchError",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]


class ProofError(ValueError):
    """Signal that a proof does not verify; the subclass says why."""


class ProofRangeError(ProofError):
    """Signal a leaf index or tree size outside what the proof kind allows."""


class HashLengthError(ProofError):
    """Signal a leaf or proof hash that is not HASH_SIZE bytes long."""


class ProofLengthError(ProofError):
    """Signal a proof with the wrong number of hashes for its index and sizes."""

    def __init__(self, what: str, got: int, want: int) -> None:
        self.got = got
        self.want = want
        super().__init__(f"{what}: got {got} hashes, want {want}")


class RootMismatchError(ProofError):
    """Signal that the root computed from a proof differs from the root given."""

    def __init__(self, what: str, got: bytes, want: bytes) -> None:
        self.got = got
        self.want = want
        super().__init__(f"{what}: got {got.hex()}, want {want.hex()}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that an inclusion proof implies (RFC 9162 §2.1.3.2 steps 1-4).

    Requires 0 <= index < size, len(leaf_hash) == HASH_SIZE and every proof hash to be
    HASH_SIZE bytes; raises ProofRangeError, HashLengthError or ProofLengthError
    otherwise. Comparing the result with a trusted root is the caller's job (see
    verify_inclusion): a proof alone proves nothing.
    """
    # Step 1: the leaf must lie inside the tree.
    if not 0 <= index < size:
        raise ProofRangeError(f"leaf index: got {index}, want 0 <= index < size ({size})")
    _require_hash(leaf_hash, "leaf hash")
    _require_hashes(proof, "inclusion proof")
    # Steps 2-3.
    fn, sn = index, size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            raise ProofLengthError("inclusion proof", len(proof), _inclusion_length(index, size))
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5, first half: a proof that stops before the root is too short.
    if sn != 0:
        raise ProofLengthError("inclusion proof", len(proof), _inclusion_length(index, size))
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf_hash is leaf `index` of the tree of `size` leaves with `root`.

    Implements RFC 9162 §2.1.3.2. Requires 0 <= index < size, len(leaf_hash) ==
    HASH_SIZE and HASH_SIZE-byte proof hashes. Returns None on success; raises a
    ProofError subclass (RootMismatchError when every precondition holds but the
    computed root is not `root`).
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    # Step 5, second half.
    if computed != root:
        raise RootMismatchError(
            f"root computed from inclusion proof (tree size {size})", computed, root
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of size1 leaves with root1 is a prefix of the one with size2, root2.

    Requires 0 <= size1 <= size2. RFC 9162 §2.1.4.2 covers 0 < size1 < size2 and is
    followed step by step; the edges it leaves out are decided as follows:
    - size1 == size2: the proof must be empty and root1 == root2 (and both must be
      EMPTY_ROOT when the size is 0, the only root an empty tree has);
    - size1 == 0 < size2: refused with ProofRangeError, since every tree extends the
      empty one and a "proof" of it proves nothing.
    Proof hashes must be HASH_SIZE bytes. Returns None on success; raises a ProofError
    subclass otherwise.
    """
    if not 0 <= size1 <= size2:
        raise ProofRangeError(
            f"consistency sizes: got size1={size1}, size2={size2}, want 0 <= size1 <= size2"
        )
    if size1 == size2:
        if proof:
            raise ProofLengthError(f"consistency proof for equal sizes {size1}", len(proof), 0)
        if root1 != root2:
            raise RootMismatchError(
                f"root1 against root2 of the same tree size {size1}", root1, root2
            )
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise RootMismatchError("root of the empty tree (tree size 0)", root1, EMPTY_ROOT)
        return
    if size1 == 0:
        raise ProofRangeError(
            f"consistency from the empty tree to size {size2}: got size1=0, want size1 > 0 "
            "(every tree extends the empty one; there is nothing to prove)"
        )
    want = _consistency_length(size1, size2)
    # Step 1.
    if not proof:
        raise ProofLengthError(f"consistency proof {size1}->{size2}", 0, want)
    _require_hashes(proof, "consistency proof")
    # Step 2.
    path = list(proof)
    if _is_power_of_two(size1):
        path.insert(0, root1)
    # Step 3.
    fn, sn = size1 - 1, size2 - 1
    # Step 4.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofLengthError(f"consistency proof {size1}->{size2}", len(proof), want)
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise ProofLengthError(f"consistency proof {size1}->{size2}", len(proof), want)
    if fr != root1:
        raise RootMismatchError(f"first root computed from proof (tree size {size1})", fr, root1)
    if sr != root2:
        raise RootMismatchError(f"second root computed from proof (tree size {size2})", sr, root2)


def _inclusion_length(index: int, size: int) -> int:
    """Return how many hashes §2.1.3.2 consumes for (index, size). Requires index < size."""
    return _path_length(index, size - 1)


def _consistency_length(size1: int, size2: int) -> int:
    """Return how many hashes a consistency proof has for 0 < size1 < size2 (§2.1.4.2)."""
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # The path is the seed plus one hash per step; a power-of-two size1 seeds with root1.
    return 1 + _path_length(fn, sn) - (1 if _is_power_of_two(size1) else 0)


def _path_length(fn: int, sn: int) -> int:
    """Return how many iterations the RFC's fn/sn loop runs before sn reaches 0."""
    count = 0
    while sn != 0:
        if not fn & 1 and fn == sn:
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
        count += 1
    return count


def _is_power_of_two(n: int) -> bool:
    """Return whether n is an exact power of two. Requires n > 0."""
    return n & (n - 1) == 0


def _require_hash(value: bytes, what: str) -> None:
    """Raise HashLengthError unless value is HASH_SIZE bytes."""
    if len(value) != HASH_SIZE:
        raise HashLengthError(f"{what}: got {len(value)} bytes, want {HASH_SIZE}")


def _require_hashes(values: Sequence[bytes], what: str) -> None:
    """Raise HashLengthError naming the first element that is not HASH_SIZE bytes."""
    for position, value in enumerate(values):
        _require_hash(value, f"{what}[{position}]")
