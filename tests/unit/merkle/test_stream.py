"""The one-pass checker against the per-proof one: the same trees pass, the same damage fails.

The reference is `inclusion_proofs` (the tree's audit paths) checked one by one with
`verify_inclusion` (RFC 9162 §2.1.3.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    MemoryNodeStore,
    OnePassChecker,
    ProofError,
    append_many,
    hash_leaf,
    inclusion_proofs,
    root,
    verify_inclusion,
)

SETTINGS = settings(max_examples=200, deadline=None)
SIZES = st.integers(min_value=1, max_value=140)


def tree(size: int) -> tuple[list[bytes], list[list[bytes]], bytes]:
    """Return the leaf hashes, every leaf's audit path and the root of a tree of `size`."""
    leaves = [hash_leaf(b"entry %d" % n) for n in range(size)]
    store = MemoryNodeStore()
    store.put_many(append_many(store, 0, leaves))
    return leaves, inclusion_proofs(store, list(range(size)), size), root(store, size)


def per_proof_accepts(
    leaves: Sequence[bytes], paths: Sequence[Sequence[bytes]], size: int, tree_root: bytes
) -> bool:
    try:
        for index, (leaf, path) in enumerate(zip(leaves, paths, strict=True)):
            verify_inclusion(leaf, index, size, path, tree_root)
    except ProofError:
        return False
    return True


def one_pass_accepts(
    leaves: Sequence[bytes],
    paths: Sequence[Sequence[bytes]],
    size: int,
    tree_root: bytes,
    *,
    heads: bool,
) -> bool:
    """Feed the checker every leaf, through `add_head` where the path allows it (heads=True)."""
    checker = OnePassChecker(size, tree_root)
    try:
        for index, (leaf, path) in enumerate(zip(leaves, paths, strict=True)):
            if heads and index > 0 and _shares_tail(paths, index):
                checker.add_head(leaf, path[: checker.head_length()])
            else:
                checker.add(leaf, path)
        checker.finish()
    except ProofError:
        return False
    return True


def _shares_tail(paths: Sequence[Sequence[bytes]], index: int) -> bool:
    """Tell whether path `index` ends with path `index - 1` from its L-th hash on, as
    `add_head` assumes (verify checks the same on the lines' bytes)."""
    shared = (index ^ (index - 1)).bit_length()
    tail = list(paths[index - 1][shared:])
    path = list(paths[index])
    return len(path) >= len(tail) and path[len(path) - len(tail) :] == tail


@pytest.mark.parametrize("heads", [False, True])
@given(size=SIZES)
@SETTINGS
def test_every_audit_path_of_a_tree_passes_the_one_pass_check(size: int, heads: bool) -> None:
    leaves, paths, tree_root = tree(size)
    assert one_pass_accepts(leaves, paths, size, tree_root, heads=heads)


def test_the_head_length_is_the_number_of_hashes_before_the_shared_tail() -> None:
    for size in range(2, 300):
        _, paths, tree_root = tree(size)
        checker = OnePassChecker(size, tree_root)
        leaves = [hash_leaf(b"entry %d" % n) for n in range(size)]
        checker.add(leaves[0], paths[0])
        for index in range(1, size):
            shared = (index ^ (index - 1)).bit_length()
            tail = len(paths[index - 1]) - shared
            assert checker.head_length() == len(paths[index]) - tail, (size, index)
            checker.add_head(leaves[index], paths[index][: checker.head_length()])
        checker.finish()


@pytest.mark.parametrize("heads", [False, True])
@given(size=SIZES, data=st.data())
@SETTINGS
def test_one_byte_of_damage_anywhere_fails_both_checks(
    size: int, heads: bool, data: st.DataObject
) -> None:
    leaves, paths, tree_root = tree(size)
    where = data.draw(st.sampled_from(["leaf", "proof", "root"]))
    byte = data.draw(st.integers(0, 31))
    flip = data.draw(st.integers(1, 255))
    if where == "leaf":
        index = data.draw(st.integers(0, size - 1))
        leaves[index] = _damaged(leaves[index], byte, flip)
    elif where == "proof" and size > 1:
        index = data.draw(st.integers(0, size - 1))
        item = data.draw(st.integers(0, len(paths[index]) - 1))
        paths[index][item] = _damaged(paths[index][item], byte, flip)
    else:
        tree_root = _damaged(tree_root, byte, flip)
    reference = per_proof_accepts(leaves, paths, size, tree_root)
    assert reference is False
    assert one_pass_accepts(leaves, paths, size, tree_root, heads=heads) is reference


@given(size=SIZES, data=st.data())
@SETTINGS
def test_a_hash_missing_from_or_added_to_a_proof_fails_both_checks(
    size: int, data: st.DataObject
) -> None:
    leaves, paths, tree_root = tree(size)
    index = data.draw(st.integers(0, size - 1))
    drop = data.draw(st.booleans())
    if drop and paths[index]:
        del paths[index][data.draw(st.integers(0, len(paths[index]) - 1))]
    else:
        paths[index].insert(data.draw(st.integers(0, len(paths[index]))), leaves[index])
    assert_both_refuse(leaves, paths, size, tree_root)


@given(size=SIZES, data=st.data())
@SETTINGS
def test_two_leaves_swapped_with_their_proofs_fail_both_checks(
    size: int, data: st.DataObject
) -> None:
    leaves, paths, tree_root = tree(size)
    if size < 2:
        return
    first = data.draw(st.integers(0, size - 2))
    second = data.draw(st.integers(first + 1, size - 1))
    leaves[first], leaves[second] = leaves[second], leaves[first]
    paths[first], paths[second] = paths[second], paths[first]
    assert_both_refuse(leaves, paths, size, tree_root)


def test_a_stream_that_stops_early_or_claims_a_node_past_the_edge_fails() -> None:
    leaves, paths, tree_root = tree(5)
    checker = OnePassChecker(5, tree_root)
    for leaf, path in zip(leaves[:4], paths[:4], strict=True):
        checker.add(leaf, path)
    with pytest.raises(ProofError, match="leaves: got 4 hashes, want 5"):
        checker.finish()
    empty = OnePassChecker(0, hash_leaf(b"x"))
    with pytest.raises(ProofError, match="root rebuilt from the leaves"):
        empty.finish()


def assert_both_refuse(
    leaves: Sequence[bytes], paths: Sequence[Sequence[bytes]], size: int, tree_root: bytes
) -> None:
    assert per_proof_accepts(leaves, paths, size, tree_root) is False
    assert one_pass_accepts(leaves, paths, size, tree_root, heads=False) is False


def _damaged(value: bytes, byte: int, flip: int) -> bytes:
    changed = bytearray(value)
    changed[byte] ^= flip
    return bytes(changed)
