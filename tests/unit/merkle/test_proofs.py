"""Proof verification: preconditions and the got/want of every failure."""

from __future__ import annotations

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    HashLengthError,
    MemoryNodeStore,
    ProofLengthError,
    ProofRangeError,
    RootMismatchError,
    append_many,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [hash_leaf(bytes([i])) for i in range(7)]


@pytest.fixture
def store() -> MemoryNodeStore:
    tree = MemoryNodeStore()
    append_many(tree, 0, LEAVES)
    return tree


def test_root_from_inclusion_proof_is_the_tree_root(store: MemoryNodeStore) -> None:
    proof = inclusion_proof(store, 2, 7)
    assert root_from_inclusion_proof(LEAVES[2], 2, 7, proof) == root(store, 7)


def test_inclusion_against_a_wrong_root_names_the_computed_and_given_roots(
    store: MemoryNodeStore,
) -> None:
    proof = inclusion_proof(store, 2, 7)
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(LEAVES[2], 2, 7, proof, EMPTY_ROOT)
    assert caught.value.got == root(store, 7)
    assert caught.value.want == EMPTY_ROOT
    assert f"got {root(store, 7).hex()}, want {EMPTY_ROOT.hex()}" in str(caught.value)


@pytest.mark.parametrize(("index", "size"), [(7, 7), (8, 7), (-1, 7), (0, 0)])
def test_inclusion_requires_index_below_size(index: int, size: int) -> None:
    with pytest.raises(ProofRangeError, match=rf"got {index}, want 0 <= index < size \({size}\)"):
        verify_inclusion(LEAVES[0], index, size, [], EMPTY_ROOT)


def test_inclusion_proof_with_a_missing_hash_reports_got_and_want_counts(
    store: MemoryNodeStore,
) -> None:
    proof = inclusion_proof(store, 2, 7)
    with pytest.raises(ProofLengthError, match="got 2 hashes, want 3"):
        verify_inclusion(LEAVES[2], 2, 7, proof[:-1], root(store, 7))


def test_inclusion_proof_with_an_extra_hash_reports_got_and_want_counts(
    store: MemoryNodeStore,
) -> None:
    proof = inclusion_proof(store, 2, 7)
    with pytest.raises(ProofLengthError, match="got 4 hashes, want 3"):
        verify_inclusion(LEAVES[2], 2, 7, [*proof, EMPTY_ROOT], root(store, 7))


def test_hashes_that_are_not_32_bytes_are_refused_by_position(store: MemoryNodeStore) -> None:
    proof = inclusion_proof(store, 2, 7)
    with pytest.raises(HashLengthError, match="leaf hash: got 3 bytes, want 32"):
        verify_inclusion(b"abc", 2, 7, proof, root(store, 7))
    with pytest.raises(HashLengthError, match=r"inclusion proof\[1\]: got 0 bytes, want 32"):
        verify_inclusion(LEAVES[2], 2, 7, [proof[0], b"", proof[2]], root(store, 7))


def test_consistency_with_a_wrong_second_root_names_both_roots(store: MemoryNodeStore) -> None:
    proof = consistency_proof(store, 3, 7)
    with pytest.raises(RootMismatchError, match=r"second root .*tree size 7\): got [0-9a-f]{64}"):
        verify_consistency(3, 7, proof, root(store, 3), EMPTY_ROOT)


def test_consistency_with_a_wrong_first_root_names_both_roots(store: MemoryNodeStore) -> None:
    proof = consistency_proof(store, 3, 7)
    with pytest.raises(RootMismatchError, match=r"first root .*tree size 3\)"):
        verify_consistency(3, 7, proof, EMPTY_ROOT, root(store, 7))


def test_consistency_requires_size1_not_above_size2() -> None:
    with pytest.raises(ProofRangeError, match="got size1=5, size2=4, want 0 <= size1 <= size2"):
        verify_consistency(5, 4, [], EMPTY_ROOT, EMPTY_ROOT)


def test_consistency_from_the_empty_tree_is_refused_as_meaningless() -> None:
    with pytest.raises(ProofRangeError, match="got size1=0, want size1 > 0"):
        verify_consistency(0, 3, [], EMPTY_ROOT, EMPTY_ROOT)


def test_consistency_between_equal_sizes_needs_equal_roots_and_no_proof(
    store: MemoryNodeStore,
) -> None:
    verify_consistency(7, 7, [], root(store, 7), root(store, 7))
    with pytest.raises(ProofLengthError, match="got 1 hashes, want 0"):
        verify_consistency(7, 7, [EMPTY_ROOT], root(store, 7), root(store, 7))
    with pytest.raises(RootMismatchError):
        verify_consistency(7, 7, [], root(store, 7), root(store, 6))


def test_the_empty_tree_is_consistent_only_with_its_own_root() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(RootMismatchError, match="empty tree"):
        verify_consistency(0, 0, [], LEAVES[0], LEAVES[0])


def test_empty_consistency_proof_between_different_sizes_reports_the_wanted_count(
    store: MemoryNodeStore,
) -> None:
    want = len(consistency_proof(store, 3, 7))
    with pytest.raises(
        ProofLengthError, match=f"consistency proof 3->7: got 0 hashes, want {want}"
    ):
        verify_consistency(3, 7, [], root(store, 3), root(store, 7))


@pytest.mark.parametrize(
    ("size1", "size2"), [(s1, s2) for s2 in range(2, 18) for s1 in range(1, s2)]
)
def test_consistency_length_errors_report_the_length_the_tree_produces(
    size1: int, size2: int
) -> None:
    tree = MemoryNodeStore()
    append_many(tree, 0, [hash_leaf(bytes([i])) for i in range(size2)])
    proof = consistency_proof(tree, size1, size2)
    with pytest.raises(ProofLengthError, match=f"got {len(proof) + 1} hashes, want {len(proof)}"):
        verify_consistency(size1, size2, [*proof, EMPTY_ROOT], root(tree, size1), root(tree, size2))
