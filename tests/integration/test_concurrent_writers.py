"""Optimistic concurrency: two writers on one subject never lose each other's events."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ledger.commands import Grant, Revoke
from ledger.events import ConsentGranted, subject_stream_id
from services.bootstrap import Services, bootstrap
from services.settings import Settings


def test_two_writers_on_one_subject_keep_every_event(settings: Settings) -> None:
    writers: list[Services] = [bootstrap(settings), bootstrap(settings)]
    try:

        def write(n: int) -> int:
            ledger = writers[n % 2].ledger
            return ledger.grant("artist-1", "ai-training", content_ids=[f"t{n}"]).position

        with ThreadPoolExecutor(max_workers=8) as pool:
            positions = list(pool.map(write, range(40)))
        assert len(set(positions)) == 40
        events = list(writers[0].ledger.events.get(subject_stream_id("artist-1")))
        assert [e.originator_version for e in events] == list(range(1, 41))
        tracks = {
            e.content_ids[0] for e in events if isinstance(e, ConsentGranted) and e.content_ids
        }
        assert tracks == {f"t{n}" for n in range(40)}
    finally:
        for services in writers:
            services.close()


def test_group_commit_appends_a_batch_in_one_call_and_reports_each_error(
    services: Services,
) -> None:
    ledger = services.ledger
    ledger.erase("gone")
    pendings = [
        Grant(subject="a", purpose="ai-training"),
        Grant(subject="gone", purpose="ai-training"),
        Grant(subject="a", purpose="data-mining"),
        Revoke(subject="b", purpose="ai-training"),
    ]
    results = ledger.execute_many(pendings)
    receipts = [r for r in results if not isinstance(r, Exception)]
    assert [type(r).__name__ for r in results] == [
        "Receipt",
        "SubjectErasedError",
        "Receipt",
        "Receipt",
    ]
    assert sorted(r.position for r in receipts) == [r.position for r in receipts]
    assert len(ledger.subject_entries("a")) == 2
