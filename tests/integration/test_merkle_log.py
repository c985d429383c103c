"""The transparency log as a tracked projection, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

import pytest

from ledger.checkpoint import verify_signed_checkpoint, verify_signed_note
from ledger.merkle import (
    MemoryNodeStore,
    Node,
    NodeConflictError,
    NodeKey,
    append_many,
    hash_leaf,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from ledger.records import canonical_json, leaf_hash_of, record_of
from projections.merkle_log import (
    LogNotReadyError,
    LogService,
    ProofRequestError,
    SqlNodeStore,
    batch_inclusion_proofs,
)
from services.bootstrap import Services
from tests.integration.log_support import populate
from tests.unit.merkle import rfc_reference as rfc


def fresh_log(services: Services, **policy: float) -> LogService:
    """Return a second LogService on the same database and key (another process's view)."""
    return LogService(
        services.ledger,
        services.database,
        services.log.key,
        log_id=services.log.log_id,
        every_events=int(policy.get("every_events", 1000)),
        every_seconds=policy.get("every_seconds", 3600.0),
    )


def test_leaves_are_the_events_record_hashes_in_position_order_without_gaps(
    services: Services,
) -> None:
    populate(services.ledger)
    services.log.catch_up(batch_size=4)
    entries = list(services.ledger.iter_entries())
    leaves = services.log.leaves(0, 100)
    assert [leaf.leaf_index for leaf in leaves] == list(range(len(entries)))
    assert [leaf.position for leaf in leaves] == [e.position for e in entries]
    assert [leaf.leaf_hash for leaf in leaves] == [
        leaf_hash_of(record_of(e, i)) for i, e in enumerate(entries)
    ]
    assert services.log.tracking() == (entries[-1].position, len(entries))


def test_logged_root_equals_the_rfc_reference_root_at_every_size(services: Services) -> None:
    populate(services.ledger)
    services.log.catch_up(batch_size=3)
    data = [canonical_json(record_of(e, i)) for i, e in enumerate(services.ledger.iter_entries())]
    for size in range(len(data) + 1):
        assert services.log.root(size) == rfc.mth(data[:size])


def test_catch_up_appends_only_new_events_and_batching_does_not_change_the_root(
    services: Services,
) -> None:
    populate(services.ledger, subjects=2)
    assert services.log.catch_up(batch_size=2) == 7
    services.ledger.grant("artist-9", "ai-training")
    assert services.log.catch_up(batch_size=2) == 1
    assert services.log.catch_up() == 0
    store = MemoryNodeStore()
    hashes = [leaf_hash_of(record_of(e, i)) for i, e in enumerate(services.ledger.iter_entries())]
    append_many(store, 0, hashes)
    assert services.log.root(8) == root(store, 8)


def test_two_catch_ups_racing_log_each_event_exactly_once(services: Services) -> None:
    populate(services.ledger, subjects=5)
    logs = [services.log, fresh_log(services)]
    errors: list[BaseException] = []

    def run(log: LogService) -> None:
        try:
            log.catch_up(batch_size=1)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    entries = list(services.ledger.iter_entries())
    leaves = services.log.leaves(0, 100)
    assert [leaf.position for leaf in leaves] == [e.position for e in entries]


def test_inclusion_proof_of_every_position_verifies_against_the_signed_checkpoint(
    services: Services,
) -> None:
    receipts = populate(services.ledger)
    services.log.catch_up()
    checkpoint = services.log.head_checkpoint()
    verify_signed_checkpoint(checkpoint.to_json(), services.log.key.public_key_b64())
    for receipt in receipts:
        proof = services.log.inclusion(receipt.position)
        assert proof.tree_size == checkpoint.tree_size
        verify_inclusion(
            proof.leaf_hash,
            proof.leaf_index,
            proof.tree_size,
            proof.audit_path,
            checkpoint.checkpoint.root_hash,
        )


def test_consistency_proofs_between_all_sizes_verify(services: Services) -> None:
    populate(services.ledger)
    services.log.catch_up()
    size = services.log.tree_size()
    for first in range(1, size + 1):
        for second in range(first, size + 1):
            proof = services.log.consistency(first, second)
            verify_consistency(first, second, proof.proof, proof.first_root, proof.second_root)


def test_impossible_proof_requests_are_refused_and_unlogged_ones_are_not_found(
    services: Services,
) -> None:
    receipts = populate(services.ledger, subjects=1)
    services.log.catch_up()
    with pytest.raises(ProofRequestError, match="empty tree"):
        services.log.consistency(0, 2)
    with pytest.raises(ProofRequestError):
        services.log.consistency(3, 2)
    with pytest.raises(ProofRequestError, match="not in a tree of 1 leaves"):
        services.log.inclusion(receipts[2].position, 1)
    with pytest.raises(LogNotReadyError):
        services.log.consistency(1, 99)
    later = services.ledger.grant("artist-0", "ai-training")
    with pytest.raises(LogNotReadyError, match="not a leaf"):
        services.log.inclusion(later.position)


def test_checkpoints_are_taken_every_n_events_signed_in_both_forms(services: Services) -> None:
    log = fresh_log(services, every_events=4)
    populate(services.ledger, subjects=3)  # 10 events
    log.catch_up(batch_size=1)
    sizes = [cp.tree_size for cp in log.iter_checkpoints()]
    assert sizes == [1, 5, 9]  # the first as soon as there is a leaf, then every 4
    published = log.checkpoints_after(1)
    assert [cp["tree_size"] for cp in published] == [5, 9]
    key = log.key.public_key_raw()
    for cp in published:
        verify_signed_checkpoint(cp, log.key.public_key_b64())
        origin, size, root_hash = verify_signed_note(str(cp["note"]), log.log_id, key)
        assert (origin, size, root_hash.hex()) == (log.log_id, cp["tree_size"], cp["root_hash"])
    assert log.head_checkpoint().tree_size == 10  # forced: the whole tree


def test_a_checkpoint_is_due_after_the_time_limit_even_with_few_events(
    services: Services,
) -> None:
    log = fresh_log(services, every_events=1000, every_seconds=60)
    populate(services.ledger, subjects=1)
    log.catch_up()
    assert [cp.tree_size for cp in log.iter_checkpoints()] == [4]
    services.ledger.grant("artist-0", "ai-training")
    log.catch_up()
    assert log.take_checkpoint() is None  # one event, a moment later: not due
    clock = services.ledger.clock
    later = clock.now() + timedelta(seconds=61)
    services.ledger.clock = type("Later", (), {"now": staticmethod(lambda: later)})()
    try:
        taken = log.take_checkpoint()
    finally:
        services.ledger.clock = clock
    assert taken is not None
    assert taken.tree_size == 5


def test_sql_node_store_replays_equal_nodes_and_refuses_changed_ones(services: Services) -> None:
    populate(services.ledger, subjects=1)
    services.log.catch_up()
    with services.database.transaction() as cursor:
        store = SqlNodeStore(cursor, services.database.dialect)
        stored = store.get_many([(1, 0), (2, 0), (0, 3)])
        assert set(stored) == {(1, 0), (2, 0), (0, 3)}
        store.put_many([Node(1, 0, stored[(1, 0)]), Node(0, 3, stored[(0, 3)])])
        with pytest.raises(NodeConflictError):
            store.put_many([Node(1, 1, bytes(32))])


class CountingStore:
    """A MemoryNodeStore counting its reads."""

    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner = inner
        self.reads = 0

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.reads += 1
        return self.inner.get_many(keys)

    def put_many(self, nodes: Sequence[Node]) -> None:
        self.inner.put_many(nodes)


@pytest.mark.parametrize("size", [*range(1, 70), 127, 128, 129, 1000, 1025])
def test_batched_proofs_equal_the_tree_modules_proofs_with_one_store_read(size: int) -> None:
    inner = MemoryNodeStore()
    append_many(inner, 0, [hash_leaf(i.to_bytes(4, "big")) for i in range(size)])
    counting = CountingStore(inner)
    indices = list(range(size)) if size < 130 else [0, 1, size // 3, size // 2, size - 2, size - 1]
    proofs = batch_inclusion_proofs(counting, indices, size)
    assert counting.reads == 1
    assert proofs == [inclusion_proof(inner, i, size) for i in indices]


def test_the_log_worker_keeps_up_and_stops_when_asked(services: Services) -> None:
    log = fresh_log(services)
    stop = threading.Event()
    worker = threading.Thread(target=log.run, args=(stop,), kwargs={"poll_seconds": 0.02})
    worker.start()
    try:
        receipts = populate(services.ledger, subjects=1)
        for _ in range(200):
            if log.tracking()[0] == receipts[-1].position:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
    assert log.tracking() == (receipts[-1].position, 4)
    assert log.checkpoint() is not None


def test_an_event_logged_after_the_latest_checkpoint_is_not_yet_provable_by_default(
    services: Services,
) -> None:
    populate(services.ledger, subjects=1)
    services.log.catch_up()
    services.log.head_checkpoint()
    later = services.ledger.grant("artist-0", "ai-training")
    services.log.catch_up()  # logged, but the policy signs no checkpoint for one event
    with pytest.raises(LogNotReadyError, match="after the latest signed checkpoint"):
        services.log.inclusion(later.position)
    assert services.log.inclusion(later.position, 5).leaf_index == 4
