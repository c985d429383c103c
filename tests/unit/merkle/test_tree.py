"""The incremental tree against the slow RFC 9162 reference, and its use of the store."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodeStore,
    MissingNodeError,
    Node,
    NodeConflictError,
    NodeKey,
    RootMismatchError,
    TreeArgumentError,
    append,
    append_many,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    inclusion_proofs,
    root,
    verify_consistency,
    verify_inclusion,
)
from tests.unit.merkle import rfc_reference as rfc

ENTRIES = st.lists(st.binary(max_size=8), min_size=1, max_size=160)
SETTINGS = settings(max_examples=150, deadline=None)


class CountingStore:
    """Wrap a MemoryNodeStore and record every read and write it serves."""

    def __init__(self) -> None:
        self.inner = MemoryNodeStore()
        self.reads: list[int] = []  # number of keys asked per get_many call
        self.writes: list[int] = []  # number of nodes per put_many call

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.reads.append(len(keys))
        return self.inner.get_many(keys)

    def put_many(self, nodes: Sequence[Node]) -> None:
        self.writes.append(len(nodes))
        self.inner.put_many(nodes)


def _tree(entries: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    append_many(store, 0, [hash_leaf(entry) for entry in entries])
    return store


def _leaf(i: int) -> bytes:
    return hash_leaf(i.to_bytes(8, "big"))


@SETTINGS
@given(entries=ENTRIES, data=st.data())
def test_root_from_incremental_tree_equals_rfc_reference_mth(
    entries: list[bytes], data: st.DataObject
) -> None:
    store = _tree(entries)
    size = data.draw(st.integers(0, len(entries)), label="size")
    assert root(store, size) == rfc.mth(entries[:size])


@SETTINGS
@given(entries=ENTRIES, data=st.data())
def test_inclusion_proof_from_incremental_tree_equals_rfc_reference_and_verifies(
    entries: list[bytes], data: st.DataObject
) -> None:
    store = _tree(entries)
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(store, index, size)
    assert proof == rfc.path(index, entries[:size])
    verify_inclusion(hash_leaf(entries[index]), index, size, proof, rfc.mth(entries[:size]))


@SETTINGS
@given(entries=ENTRIES, data=st.data())
def test_consistency_proof_from_incremental_tree_equals_rfc_reference_and_verifies(
    entries: list[bytes], data: st.DataObject
) -> None:
    store = _tree(entries)
    size2 = data.draw(st.integers(1, len(entries)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = consistency_proof(store, size1, size2)
    assert proof == rfc.proof(size1, entries[:size2])
    verify_consistency(size1, size2, proof, rfc.mth(entries[:size1]), rfc.mth(entries[:size2]))


@SETTINGS
@given(entries=st.lists(st.binary(max_size=8), min_size=2, max_size=160), data=st.data())
def test_any_flipped_bit_in_a_proof_fails_verification(
    entries: list[bytes], data: st.DataObject
) -> None:
    store = _tree(entries)
    size2 = data.draw(st.integers(2, len(entries)), label="size2")  # size 1 has no proofs
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    index = data.draw(st.integers(0, size2 - 1), label="index")
    inclusion = inclusion_proof(store, index, size2)
    consistency = consistency_proof(store, size1, size2)
    bit = data.draw(st.integers(0, 8 * 32 - 1), label="bit")

    def flipped(proof: list[bytes], at: int) -> list[bytes]:
        changed = bytearray(proof[at])
        changed[bit // 8] ^= 1 << (bit % 8)
        return [*proof[:at], bytes(changed), *proof[at + 1 :]]

    at = data.draw(st.integers(0, len(inclusion) - 1), label="inclusion element")
    with pytest.raises(RootMismatchError):
        verify_inclusion(
            hash_leaf(entries[index]), index, size2, flipped(inclusion, at), root(store, size2)
        )
    at = data.draw(st.integers(0, len(consistency) - 1), label="consistency element")
    with pytest.raises(RootMismatchError):
        verify_consistency(
            size1, size2, flipped(consistency, at), root(store, size1), root(store, size2)
        )


@SETTINGS
@given(entries=ENTRIES, cuts=st.lists(st.integers(0, 160), max_size=6))
def test_append_many_in_any_batches_equals_repeated_append(
    entries: list[bytes], cuts: list[int]
) -> None:
    leaves = [hash_leaf(entry) for entry in entries]
    one_by_one = MemoryNodeStore()
    single_nodes = [node for i, leaf in enumerate(leaves) for node in append(one_by_one, i, leaf)]

    batched = MemoryNodeStore()
    bounds = sorted({0, len(leaves), *(cut for cut in cuts if cut < len(leaves))})
    batch_nodes: list[Node] = []
    for begin, end in itertools.pairwise(bounds):
        batch_nodes += append_many(batched, begin, leaves[begin:end])
        assert root(batched, end) == root(one_by_one, end)

    assert batch_nodes == single_nodes
    assert len(batched) == len(one_by_one) == 2 * len(leaves) - len(leaves).bit_count()


@SETTINGS
@given(entries=ENTRIES)
def test_frontier_kept_in_memory_tracks_the_root_without_reading_the_store(
    entries: list[bytes],
) -> None:
    frontier = Frontier.empty()
    for size, entry in enumerate(entries, start=1):
        frontier, _ = frontier.append(hash_leaf(entry))
        assert frontier.size == size
    assert frontier.root() == rfc.mth(entries)


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert root(MemoryNodeStore(), 0) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_hash_is_sha256_of_zero_byte_and_entry() -> None:
    assert hash_leaf(b"entry") == hashlib.sha256(b"\x00entry").digest()


def test_append_many_reads_the_store_once_and_writes_once_per_batch() -> None:
    store = CountingStore()
    append_many(store, 0, [_leaf(i) for i in range(1000)])
    append_many(store, 1000, [_leaf(i) for i in range(1000, 1500)])
    # The first batch has an empty frontier: nothing to read.
    assert store.reads == [(1000).bit_count()]
    assert len(store.writes) == 2


def test_append_reads_at_most_one_node_per_level() -> None:
    store = CountingStore()
    for size in range(1024):
        store.reads.clear()
        append(store, size, _leaf(size))
        assert sum(store.reads) == size.bit_count() <= size.bit_length()


def test_root_and_proofs_read_the_store_in_one_call_of_logarithmic_size() -> None:
    store = CountingStore()
    append_many(store, 0, [_leaf(i) for i in range(1000)])
    for operation in (
        lambda: root(store, 999),
        lambda: inclusion_proof(store, 500, 999),
        lambda: consistency_proof(store, 333, 999),
    ):
        store.reads.clear()
        operation()
        assert len(store.reads) == 1
        assert store.reads[0] <= 2 * (999).bit_length()


def test_replaying_an_append_is_a_no_op() -> None:
    store = MemoryNodeStore()
    append_many(store, 0, [_leaf(i) for i in range(5)])
    before = root(store, 5)
    append(store, 4, _leaf(4))
    assert root(store, 5) == before


def test_appending_a_different_leaf_at_a_taken_index_is_refused() -> None:
    store = MemoryNodeStore()
    append_many(store, 0, [_leaf(i) for i in range(4)])
    with pytest.raises(NodeConflictError, match=r"node \(level=0, index=3\) is immutable: got"):
        append(store, 3, _leaf(99))


def test_tree_sizes_beyond_the_appended_leaves_report_the_missing_nodes() -> None:
    store = MemoryNodeStore()
    append_many(store, 0, [_leaf(i) for i in range(4)])
    with pytest.raises(MissingNodeError, match=r"lacks 1 node\(s\): \(level=0, index=4\)"):
        root(store, 5)
    with pytest.raises(MissingNodeError):
        append(store, 6, _leaf(6))


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 3)])
def test_inclusion_proof_requires_index_within_the_tree(index: int, size: int) -> None:
    with pytest.raises(TreeArgumentError, match=rf"got {index}, want 0 <= index < size"):
        inclusion_proof(MemoryNodeStore(), index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (0, 0)])
def test_consistency_proof_requires_size1_between_1_and_size2(size1: int, size2: int) -> None:
    with pytest.raises(TreeArgumentError, match="want 0 < size1 <= size2"):
        consistency_proof(MemoryNodeStore(), size1, size2)


def test_consistency_proof_between_equal_sizes_is_empty() -> None:
    store = _tree([b"a", b"b", b"c"])
    assert consistency_proof(store, 3, 3) == []


def test_append_refuses_a_leaf_hash_that_is_not_32_bytes() -> None:
    with pytest.raises(TreeArgumentError, match="leaf hash 0: got 5 bytes, want 32"):
        append(MemoryNodeStore(), 0, b"short")


def test_frontier_refuses_a_hash_count_that_does_not_match_its_size() -> None:
    with pytest.raises(TreeArgumentError, match="got 1 hashes, want 2"):
        Frontier(3, (EMPTY_ROOT,))


@pytest.mark.parametrize("size", [*range(1, 70), 127, 128, 129, 255, 257])
def test_batched_inclusion_proofs_equal_the_rfc_recursion_for_every_leaf(size: int) -> None:
    entries = [i.to_bytes(4, "big") for i in range(size)]
    counting = CountingStore()
    append_many(counting, 0, [hash_leaf(entry) for entry in entries])
    counting.reads.clear()
    proofs = inclusion_proofs(counting, list(range(size)), size)
    assert len(counting.reads) == 1
    assert proofs == [rfc.path(index, entries) for index in range(size)]


def test_batched_inclusion_proofs_refuse_an_index_outside_the_tree() -> None:
    store = MemoryNodeStore()
    append_many(store, 0, [_leaf(i) for i in range(4)])
    with pytest.raises(TreeArgumentError, match=r"got 4, want 0 <= index < size \(4\)"):
        inclusion_proofs(store, [0, 4], 4)
