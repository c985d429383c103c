"""Build and verify an RFC 9162 §2.1 Merkle tree log, with the standard library only.

- ``hashing``: the leaf and node hashes and their domain-separation prefixes;
- ``tree``: the incremental, append-only tree over a NodeStore, and its proofs;
- ``proofs``: verification of inclusion and consistency proofs;
- ``stream``: the check of every leaf's proof in one pass that rebuilds the tree.
"""

from ledger.merkle.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    hash_children,
    hash_leaf,
)
from ledger.merkle.proofs import (
    HashLengthError,
    ProofError,
    ProofLengthError,
    ProofRangeError,
    RootMismatchError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle.stream import OnePassChecker
from ledger.merkle.tree import (
    Frontier,
    MemoryNodeStore,
    MerkleTreeError,
    MissingNodeError,
    Node,
    NodeConflictError,
    NodeKey,
    NodeStore,
    TreeArgumentError,
    append,
    append_many,
    consistency_proof,
    inclusion_proof,
    inclusion_proof_keys,
    inclusion_proofs,
    root,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "Frontier",
    "HashLengthError",
    "MemoryNodeStore",
    "MerkleTreeError",
    "MissingNodeError",
    "Node",
    "NodeConflictError",
    "NodeKey",
    "NodeStore",
    "OnePassChecker",
    "ProofError",
    "ProofLengthError",
    "ProofRangeError",
    "RootMismatchError",
    "TreeArgumentError",
    "append",
    "append_many",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "inclusion_proof_keys",
    "inclusion_proofs",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]
