"""Slow reference Merkle tree, written straight from the RFC 9162 §2.1 text.

Deliberately naive (recursive, O(n) per call, hashlib only, no code shared with
ledger.merkle) so that it can be checked against the RFC by eye and then used as an
oracle for the fast incremental tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_smaller_than(n: int) -> int:
    """Return k, "the largest power of two smaller than n" (§2.1.1). Requires n > 1."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) of §2.1.1 for the list of entries (leaf data, not hashes)."""
    n = len(entries)
    if n == 0:
        return _hash(b"")
    if n == 1:
        return _hash(b"\x00" + entries[0])
    k = largest_power_of_two_smaller_than(n)
    return _hash(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """Return PATH(m, D[n]) of §2.1.3.1. Requires 0 <= m < n."""
    n = len(entries)
    if n == 1:
        return []
    k = largest_power_of_two_smaller_than(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(m, D[n]) of §2.1.4.1. Requires 0 < m <= n."""
    return subproof(m, entries, True)


def subproof(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    """Return SUBPROOF(m, D[n], b) of §2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = largest_power_of_two_smaller_than(n)
    if m <= k:
        return [*subproof(m, entries[:k], b), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]
