"""The snapshot's pure parts: the item digest, the manifest seal, the record round trip."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import SigningKey
from ledger.datasets import items_digest
from ledger.events import ConsentGranted, Entry, subject_stream_id
from ledger.records import record_of
from ledger.replay import entry_of_record
from ledger.snapshot import SnapshotError, check_manifest_signature, seal_manifest, snapshot_id_of

names = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6)


@given(st.lists(st.tuples(names, names), max_size=20))
def test_item_digest_is_sha256_of_sorted_unique_lines(pairs: list[tuple[str, str]]) -> None:
    want = "".join(f"{s},{c}\n" for s, c in sorted(set(pairs)))
    assert items_digest(pairs) == (hashlib.sha256(want.encode()).hexdigest(), len(set(pairs)))
    assert items_digest(reversed(pairs + pairs)) == items_digest(pairs)


def test_sealed_manifest_verifies_and_any_change_breaks_it() -> None:
    key = SigningKey.generate()
    sealed = seal_manifest({"format": "f", "position": 3, "rows": {"total": 1}}, key)
    assert sealed["snapshot_id"] == snapshot_id_of(sealed)
    check_manifest_signature(sealed, key.public_key_raw())
    with pytest.raises(SnapshotError, match="another key"):
        check_manifest_signature(sealed, SigningKey.generate().public_key_raw())
    changed = {**sealed, "position": 4}
    with pytest.raises(SnapshotError, match="snapshot_id"):
        check_manifest_signature(changed, None)
    forged = {**changed, "snapshot_id": snapshot_id_of(changed)}
    with pytest.raises(SnapshotError, match="signature does not verify"):
        check_manifest_signature(forged, None)


def test_an_export_record_replays_to_the_event_it_was_rendered_from() -> None:
    when = datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    event = ConsentGranted(
        originator_id=subject_stream_id("ann"),
        originator_version=3,
        timestamp=when,
        event_id=uuid4(),
        effective_at=when,
        subject="ann",
        purpose="ai-training",
        party="*",
        content_ids=["t1", "t2"],
        aspect="voice",
        expires_at=datetime(2026, 1, 1, tzinfo=UTC),
        evidence={"channel": "web"},
    )
    entry = Entry(42, event)
    assert entry_of_record(record_of(entry, 7)) == entry
