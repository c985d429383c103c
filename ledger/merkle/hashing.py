"""Hash leaves and interior nodes of an RFC 9162 Merkle tree (SHA-256).

RFC 9162 §2.1.1 separates the two kinds of input with a one-byte prefix so that a
leaf can never be passed off as an interior node (second-preimage resistance).
"""

from __future__ import annotations

import hashlib
from typing import Final

LEAF_PREFIX: Final = b"\x00"  # RFC 9162 §2.1.1: MTH({d(0)}) = HASH(0x00 || d(0))
NODE_PREFIX: Final = b"\x01"  # RFC 9162 §2.1.1: MTH(D_n) = HASH(0x01 || left || right)
HASH_SIZE: Final = 32  # bytes in a SHA-256 digest, the size of every node hash
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()


def hash_leaf(data: bytes) -> bytes:
    """Return the leaf hash SHA-256(0x00 || data) of one log entry (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash SHA-256(0x01 || left || right) (RFC 9162 §2.1.1).

    Requires both children to be node hashes of HASH_SIZE bytes; the lengths are not
    checked here because this is the inner loop of every tree operation — callers that
    accept hashes from outside (proof verification) check them at their boundary.
    """
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
