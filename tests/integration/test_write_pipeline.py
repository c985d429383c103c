"""The write pipeline's store-side duties: the event index and the ledger clock.

Voids find their event through an index, not by scanning stored bytes, so they keep
working with the library's cipher and compression on; `recorded_at` never decreases
along ledger positions, whatever the clocks of concurrent writer processes say.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.cryptography import AESCipher
from hypothesis import HealthCheck, given
from hypothesis import settings as examples_of
from hypothesis import strategies as st

from ledger import store
from ledger.application import Receipt
from ledger.commands import Erase, Grant, Void
from ledger.errors import EventAlreadyVoidedError, UnknownEventError
from ledger.events import ConsentGranted, subject_stream_id
from services.bootstrap import Services, bootstrap
from services.settings import Settings

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def ciphered(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """Yield services whose event store encrypts and compresses every stored event."""
    monkeypatch.setenv("CIPHER_TOPIC", "eventsourcing.cryptography:AESCipher")
    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    wired = bootstrap(settings)
    yield wired
    wired.close()


def test_a_void_finds_its_event_with_the_store_cipher_and_compression_on(
    ciphered: Services,
) -> None:
    ledger = ciphered.ledger
    grant = ledger.grant("artist-1", "ai-training", evidence={"ip": "192.0.2.1"})
    stored = store.select_streams(ledger.recorder, [subject_stream_id("artist-1")])
    state = next(iter(stored.values()))[0].state
    assert grant.event_id.hex.encode() not in state  # a byte scan could not find it
    void = ledger.void(grant.event_id, "entered in error")
    found = ledger.find_event(grant.event_id)
    assert found is not None
    assert (found.position, type(found.event)) == (grant.position, ConsentGranted)
    with pytest.raises(EventAlreadyVoidedError):
        ledger.void(grant.event_id, "again")
    assert ledger.ledger_position() == void.position


def test_an_event_appended_without_its_index_rows_is_still_found(services: Services) -> None:
    ledger = services.ledger
    grant = ledger.grant("artist-1", "ai-training")
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:  # as if the writer died right after
        cursor.execute(f"DELETE FROM {store._table(ledger.recorder, store.INDEX_TABLE)}")
    assert ledger.void(grant.event_id, "entered in error").position > grant.position
    with pytest.raises(UnknownEventError):
        ledger.void(uuid4(), "no such event")


class SkewedClock:
    """The system clock shifted by a fixed offset: a writer host whose clock is off."""

    def __init__(self, offset_s: float) -> None:
        self.offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        """Return the shifted UTC instant."""
        return datetime.now(UTC) + self.offset


def write_grants(database_url: str, data_dir: str, offset_s: float, count: int) -> None:
    """Write `count` grants from a process of its own, with a skewed clock."""
    settings = Settings(database_url=database_url, data_dir=Path(data_dir))
    services = bootstrap(settings, clock=SkewedClock(offset_s))
    try:
        for n in range(count):
            services.ledger.grant(f"artist-{offset_s}-{n % 3}", "ai-training")
    finally:
        services.close()


def test_recorded_at_never_decreases_along_positions_across_writer_processes(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = bootstrap(Settings(database_url=database_url, data_dir=data_dir))
    first.ledger.grant("artist-first", "ai-training")  # every later write comes after it
    first.close()
    context = multiprocessing.get_context("spawn")
    # One writer's clock is a minute behind the others': read before the writers' lock,
    # its events would carry times earlier than those already recorded.
    writers = [
        context.Process(target=write_grants, args=(database_url, str(data_dir), offset, 40))
        for offset in (-60.0, 0.0, 0.0)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(150)
        assert writer.exitcode == 0
    services = bootstrap(Settings(database_url=database_url, data_dir=data_dir))
    try:
        entries = list(services.ledger.iter_entries())
    finally:
        services.close()
    assert len(entries) == 121
    times = [e.event.recorded_at for e in entries]
    assert times == sorted(times)


def test_a_void_in_the_same_group_commit_as_its_grant_voids_it(services: Services) -> None:
    ledger = services.ledger
    grant = Grant(subject="artist-1", purpose="ai-training")
    void = Void(voided_event_id=grant.event_id, reason="entered in error")
    again = Void(voided_event_id=grant.event_id, reason="twice")
    results = ledger.execute_many([grant, void, again])
    assert [type(r).__name__ for r in results] == ["Receipt", "Receipt", "EventAlreadyVoidedError"]
    assert not ledger.check("artist-1", "ai-training").allowed


def test_a_command_whose_event_the_ledger_holds_is_answered_with_it_not_appended_again(
    services: Services,
) -> None:
    ledger = services.ledger
    grant = Grant(subject="artist-1", purpose="ai-training")
    first = ledger.execute(grant)
    assert ledger.execute(grant) == first
    erase = Erase(subject="artist-1")
    erased = ledger.execute(erase)
    # Answered before it is decided: an erased subject refuses every new write, not this.
    assert ledger.execute(erase) == erased
    assert ledger.execute(grant) == first
    assert ledger.ledger_position() == erased.position


def test_one_event_id_twice_in_one_group_commit_appends_it_once(services: Services) -> None:
    ledger = services.ledger
    grant = Grant(subject="artist-1", purpose="ai-training")
    other = Grant(subject="artist-1", purpose="data-mining")
    results = ledger.execute_many([grant, other, grant])
    assert results[0] == results[2]
    assert isinstance(results[1], Receipt)
    assert [e.event.event_id for e in ledger.iter_entries()] == [grant.event_id, other.event_id]


def test_a_writer_whose_cache_missed_the_append_of_its_event_id_answers_it(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data")
    first, second = bootstrap(settings), bootstrap(settings)
    try:
        second.ledger.grant("artist-1", "personalization")  # `second` caches the stream
        grant = Grant(subject="artist-1", purpose="ai-training")
        landed = first.ledger.execute(grant)  # appended by another process
        assert second.ledger.execute(grant) == landed  # its cache is stale: the key decides
        assert second.ledger.ledger_position() == landed.position
    finally:
        first.close()
        second.close()


def test_a_writer_whose_cache_missed_another_processes_grant_records_its_expiry(
    database_url: str, tmp_path: Path
) -> None:
    # Found by the worker leader-kill scenario: the expiry duty's process had the
    # subject's stream cached, missed the grant the API process appended, and refused
    # its expiry ("no grant with an expiry") for good. A refusal decided on a cached
    # state is now decided again on the stored stream.
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data")
    first, second = bootstrap(settings), bootstrap(settings)
    try:
        second.ledger.grant("artist-1", "personalization")  # `second` caches the stream
        now = datetime.now(UTC)
        grant = first.ledger.grant(  # appended by another process; expired an hour ago
            "artist-1",
            "ai-training",
            effective_at=now - timedelta(hours=2),
            expires_at=now - timedelta(hours=1),
        )
        expired = second.ledger.record_expiry("artist-1", grant.event_id)
        assert expired is not None
        assert expired.position > grant.position
        assert second.ledger.record_expiry("artist-1", grant.event_id) is None  # once
    finally:
        first.close()
        second.close()


def test_batched_and_one_by_one_writes_agree_on_repeated_event_ids(services: Services) -> None:
    ledger = services.ledger
    examples = itertools.count()

    @examples_of(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        picks=st.lists(st.integers(0, 3), min_size=1, max_size=10),
        cuts=st.sets(st.integers(1, 9)),
    )
    def agree(picks: list[int], cuts: set[int]) -> None:
        n = next(examples)
        pools = {
            path: [Grant(subject=f"{path}-{n}-{k % 2}", purpose="ai-training") for k in range(4)]
            for path in ("batched", "single")
        }
        batched_commands = [pools["batched"][p] for p in picks]
        bounds = [0, *sorted(c for c in cuts if c < len(picks)), len(picks)]
        batched = [
            r
            for a, b in itertools.pairwise(bounds)
            for r in ledger.execute_many(batched_commands[a:b])
        ]
        single = [ledger.execute(pools["single"][p]) for p in picks]
        for answers in (batched, single):
            first: dict[int, Receipt] = {}
            for pick, answer in zip(picks, answers, strict=True):
                assert isinstance(answer, Receipt)
                assert first.setdefault(pick, answer) == answer  # a repeat: the first receipt
        for path in ("batched", "single"):
            stored = [
                i.entry.event.event_id for k in (0, 1) for i in ledger.history(f"{path}-{n}-{k}")
            ]
            assert sorted(map(str, stored)) == sorted(
                str(pools[path][p].event_id) for p in set(picks)
            )

    agree()


def test_a_group_commit_after_another_process_wrote_its_streams_stays_one_transaction(
    services: Services, settings: Settings
) -> None:
    ledger = services.ledger
    ledger.execute_many([Grant(subject=s, purpose="ai-training") for s in ("a-1", "a-2")])
    other = bootstrap(settings)  # another writer process on the same store
    try:
        other.ledger.grant("a-1", "ai-training")  # a version the first ledger's cache lacks
    finally:
        other.close()
    receipts = ledger.execute_many(
        [Grant(subject=s, purpose="data-mining") for s in ("a-1", "a-2", "a-3")]
    )
    # One transaction reads the ledger clock once: a stale stream would have failed the
    # batch and each write would have been retried in a transaction (and time) of its own.
    assert len({r.recorded_at for r in receipts if not isinstance(r, Exception)}) == 1
    versions = [e.originator_version for e in ledger.events.get(subject_stream_id("a-1"))]
    assert versions == [1, 2, 3]
