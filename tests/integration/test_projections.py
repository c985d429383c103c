"""The read models, in behaviour sentences, on SQLite and PostgreSQL.

Each test writes through the use cases, projects (sometimes in batches of one event, so
that facts meet across batches), and compares the read models' answers with the replay
(`ConsentLedger.check`), which stays the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import psycopg
import pytest

from ledger.events import ConsentExpired
from ledger.vocabulary import Basis
from projections.expiry import ExpiryScheduler
from projections.reader import PermissionReader
from projections.runner import Projector
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.integration.projection_histories import ManualClock, clocked_services
from tests.support.projection_faults import FaultyModel

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    """Yield services on the parametrised backend whose ledger clock the test moves."""
    yield from clocked_services(settings)


def project(services: Services, batch_size: int = 1) -> int:
    """Catch the read models up in batches of `batch_size` events."""
    return Projector(services.ledger, services.projector.model, batch_size=batch_size).catch_up()


def agree(services: Services, subject: str, purpose: str, **words: object) -> Basis:
    """Assert that both read paths and the replay give the same answer; return its basis."""
    ledger = services.ledger
    at = words.get("at")
    known_at = words.get("known_at")
    expected = ledger.check(subject, purpose, **words)  # type: ignore[arg-type]
    question = ledger.question(
        subject,
        purpose,
        str(words.get("party", "platform")),
        words.get("content"),  # type: ignore[arg-type]
        str(words.get("aspect", "all")),
        at,  # type: ignore[arg-type]
        known_at,  # type: ignore[arg-type]
    )
    given = known_at is not None
    assert services.reader.answer(question, known_at_given=given) == expected
    assert services.reader.answer(question, known_at_given=given, tips=False) == expected
    return expected.basis


def tip_event(services: Services, subject: str, purpose: str, party: str = "platform") -> str:
    """Return the event id (hex) `perm_current` holds for a catalogue key, or ''."""
    for row in services.projector.view.dump()["perm_current"]:
        if row[:5] == (subject, purpose, party, "", "all"):
            return str(row[8])
    return ""


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_voiding_the_latest_fact_brings_back_the_answer_it_had_replaced(
    clocked: tuple[Services, ManualClock], batch_size: int
) -> None:
    services, clock = clocked
    ledger = services.ledger
    grant = ledger.grant("ann", "ai-generative-training")
    clock.tick(1)
    revocation = ledger.revoke("ann", "ai-generative-training")
    project(services, batch_size)
    assert agree(services, "ann", "ai-generative-training") is Basis.EXPLICIT_REVOCATION
    clock.tick(1)
    ledger.void(revocation.event_id, "entered in error")
    project(services, batch_size)
    assert tip_event(services, "ann", "ai-generative-training") == grant.event_id.hex
    assert agree(services, "ann", "ai-generative-training") is Basis.EXPLICIT_GRANT
    # As known before the void, the revocation still stood.
    before = T0 + timedelta(seconds=1, microseconds=1)
    assert agree(services, "ann", "ai-generative-training", known_at=before) is (
        Basis.EXPLICIT_REVOCATION
    )


def test_voiding_the_latest_acceptance_restores_the_terms_accepted_before(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    ledger.publish_terms("v1", T0, [{"purpose": "ai-training", "default": "granted"}])
    ledger.publish_terms("v2", T0, [{"purpose": "ai-training", "default": "denied"}])
    ledger.accept_terms("ann", "v1")
    clock.tick(1)
    second = ledger.accept_terms("ann", "v2")
    project(services)
    assert not services.reader.check("ann", "ai-training").allowed
    clock.tick(1)
    ledger.void(second.event_id, "signed by someone else")
    project(services)
    decision = services.reader.check("ann", "ai-training")
    assert decision.allowed
    assert decision.terms_version == "v1"
    assert agree(services, "ann", "ai-training") is Basis.TERMS_DEFAULT


def test_a_backfilled_revocation_projected_later_does_not_hide_a_later_grant(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    grant = ledger.grant("ann", "ai-generative-training", effective_at=T0 - timedelta(days=1))
    project(services)
    clock.tick(1)
    ledger.revoke("ann", "ai-generative-training", effective_at=T0 - timedelta(days=30))
    project(services)
    assert tip_event(services, "ann", "ai-generative-training") == grant.event_id.hex
    assert agree(services, "ann", "ai-generative-training") is Basis.EXPLICIT_GRANT
    # Between the backfilled revocation and the grant, the revocation decided.
    at = T0 - timedelta(days=10)
    assert agree(services, "ann", "ai-generative-training", at=at) is Basis.EXPLICIT_REVOCATION
    # As known before the backfill was recorded, nobody had said anything about then.
    known_at = T0 + timedelta(microseconds=1)
    assert agree(services, "ann", "ai-generative-training", at=at, known_at=known_at) is (
        Basis.OPT_IN_REQUIRED
    )


def test_a_scheduled_grant_applies_from_its_effective_time_on(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    start = T0 + timedelta(hours=1)
    services.ledger.grant("ann", "ai-generative-training", party="acme", effective_at=start)
    project(services)
    assert agree(services, "ann", "ai-generative-training", party="acme") is (Basis.OPT_IN_REQUIRED)
    assert agree(services, "ann", "ai-generative-training", party="acme", at=start) is (
        Basis.EXPLICIT_GRANT
    )
    clock.tick(3600)
    assert services.reader.check("ann", "ai-generative-training", party="acme").allowed


def test_expiry_is_exclusive_and_the_scheduler_records_it_once(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    expires = T0 + timedelta(minutes=5)
    grant = ledger.grant("ann", "ai-training", party="acme", expires_at=expires)
    project(services)
    scheduler = ExpiryScheduler(ledger, services.projector.model, clock)
    assert scheduler.run_due() == 0
    just_before = expires - timedelta(microseconds=1)
    assert agree(services, "ann", "ai-training", party="acme", at=just_before) is (
        Basis.EXPLICIT_GRANT
    )
    assert agree(services, "ann", "ai-training", party="acme", at=expires) is Basis.GRANT_EXPIRED

    clock.tick(600)
    assert scheduler.run_due() == 1
    assert scheduler.run_due() == 0  # not yet projected: still listed, not recorded again
    project(services)
    assert ExpiryScheduler(ledger, services.projector.model, clock).run_due() == 0
    expiries = [
        e.event for e in ledger.subject_entries("ann") if isinstance(e.event, ConsentExpired)
    ]
    assert [e.grant_event_id for e in expiries] == [grant.event_id]
    assert expiries[0].effective_at == expires
    assert services.projector.view.dump()["perm_expiries"] == []
    assert agree(services, "ann", "ai-training", party="acme") is Basis.GRANT_EXPIRED


def test_unmentioned_content_and_unnamed_parties_get_the_catalogue_and_open_answers(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, _ = clocked
    ledger = services.ledger
    open_grant = ledger.grant("ann", "ai-training", party="*")
    ledger.revoke("ann", "ai-training", party="acme", content_ids=["t1"])
    project(services, 1000)
    decision = services.reader.check("ann", "ai-training", party="newco", content="never-seen")
    assert decision.allowed
    assert decision.event_ids == (open_grant.event_id,)
    assert agree(services, "ann", "ai-training", party="acme", content="t1") is (
        Basis.EXPLICIT_REVOCATION
    )
    assert agree(services, "ann", "ai-training", party="acme", content="t2") is (
        Basis.EXPLICIT_GRANT
    )
    assert agree(services, "ann", "ai-training", party="platform") is Basis.NO_TERMS_ACCEPTED


def test_an_erased_subject_is_denied_everything_but_the_past_stays_answerable(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    ledger.grant("ann", "ai-generative-training")
    clock.tick(1)
    erasure = ledger.erase("ann")
    project(services)
    decision = services.reader.check("ann", "ai-generative-training")
    assert (decision.allowed, decision.basis, decision.event_ids) == (
        False,
        Basis.ERASED,
        (erasure.event_id,),
    )
    before = erasure.recorded_at - timedelta(microseconds=1)
    assert agree(services, "ann", "ai-generative-training", known_at=before) is (
        Basis.EXPLICIT_GRANT
    )


def test_answers_report_the_ledger_position_they_reflect(
    clocked: tuple[Services, ManualClock],
) -> None:
    services, clock = clocked
    ledger = services.ledger
    first = ledger.grant("ann", "ai-generative-training")
    clock.tick(10)
    second = ledger.grant("bob", "ai-generative-training")
    project(services)
    assert services.reader.check("ann", "ai-generative-training").position == second.position
    as_known = services.reader.check(
        "ann", "ai-generative-training", known_at=first.recorded_at + timedelta(seconds=1)
    )
    assert as_known.position == first.position


def test_a_one_shot_reader_catches_up_before_answering(services: Services) -> None:
    receipt = services.ledger.grant("ann", "ai-generative-training")
    assert services.projector.position() == 0
    decision = services.reader.check("ann", "ai-generative-training")
    assert decision.allowed
    assert decision.position == receipt.position
    assert services.projector.position() == receipt.position


def test_a_reader_that_cannot_catch_up_in_time_answers_by_replay(services: Services) -> None:
    reader = PermissionReader(services.ledger, services.projector, catch_up_seconds=0)
    receipt = services.ledger.grant("ann", "ai-generative-training")
    decision = reader.check("ann", "ai-generative-training")
    assert decision.allowed
    assert decision.position == receipt.position
    assert services.projector.position() == 0  # the read models were never touched


def test_min_position_waits_for_the_background_projector(services: Services) -> None:
    services.projector.start_background()
    try:
        for n in range(5):
            receipt = services.ledger.grant(f"artist-{n}", "ai-generative-training")
            decision = services.reader.check(
                f"artist-{n}", "ai-generative-training", min_position=receipt.position
            )
            assert decision.allowed
            assert decision.position >= receipt.position
        assert services.projector.status().lag == 0
    finally:
        services.projector.stop()
    assert not services.projector.running


def test_a_write_the_projection_cannot_reach_in_time_is_answered_by_replay(
    services: Services,
) -> None:
    release, entered = threading.Event(), threading.Event()

    def hold(point: str) -> None:
        if point == "before-tracking":
            entered.set()
            release.wait(30)

    stuck = Projector(services.ledger, FaultyModel(services.projector.model, hold))
    stuck.start_background()
    try:
        reader = PermissionReader(services.ledger, stuck, wait_seconds=0.1)
        receipt = services.ledger.grant("ann", "ai-generative-training")
        assert entered.wait(30)  # the projector holds the grant's batch (maybe after a heartbeat)
        decision = reader.check("ann", "ai-generative-training", min_position=receipt.position)
        assert decision.allowed
        assert decision.position == receipt.position
        assert stuck.position() < receipt.position  # the answer came from the replay
    finally:
        release.set()
        stuck.stop()
    assert stuck.position() == receipt.position


def test_a_server_read_without_a_position_still_reflects_earlier_writes(
    services: Services,
) -> None:
    release = threading.Event()
    stuck = Projector(
        services.ledger,
        FaultyModel(
            services.projector.model,
            lambda point: release.wait(30) if point == "before-tracking" else None,
        ),
    )
    stuck.start_background()
    try:
        reader = PermissionReader(services.ledger, stuck, wait_seconds=0.1)
        receipt = services.ledger.revoke("ann", "ai-generative-training")
        decision = reader.check("ann", "ai-generative-training")  # the view lags: replay
        assert (decision.basis, decision.position) == (
            Basis.EXPLICIT_REVOCATION,
            receipt.position,
        )
    finally:
        release.set()
        stuck.stop()
    services.projector.start_background()
    try:
        for n in range(5):
            grant = services.ledger.grant("ann", "ai-generative-training", content_ids=[f"t{n}"])
            decision = services.reader.check("ann", "ai-generative-training", content=f"t{n}")
            assert decision.allowed
            assert decision.position >= grant.position
    finally:
        services.projector.stop()


def test_rebuild_gives_identical_tables(clocked: tuple[Services, ManualClock]) -> None:
    services, clock = clocked
    ledger = services.ledger
    ledger.publish_terms("v1", T0, [{"purpose": "ai-training", "default": "granted"}])
    voidable = []
    for n in range(6):
        clock.tick(1)
        voidable.append(ledger.accept_terms(f"s{n}", "v1"))
        voidable.append(
            ledger.grant(
                f"s{n}",
                "ai-training",
                party=("platform", "*", "acme")[n % 3],
                content_ids=["t1", "t2"] if n % 2 else None,
                expires_at=T0 + timedelta(seconds=3 + n),
            )
        )
        voidable.append(ledger.revoke(f"s{n}", "ai-training", effective_at=T0 - timedelta(days=n)))
    ledger.void(voidable[4].event_id, "x")
    ledger.void(voidable[9].event_id, "x")
    clock.tick(60)
    project(services, 2)
    ExpiryScheduler(ledger, services.projector.model, clock).run_due()
    ledger.erase("s5")
    project(services, 1)
    incremental = services.projector.view.dump()
    assert Projector(ledger, services.projector.model, batch_size=1000).rebuild() == (
        ledger.ledger_position()
    )
    assert services.projector.view.dump() == incremental


def test_the_projector_follows_positions_with_gaps(postgres_url: str, tmp_path: Path) -> None:
    wired = bootstrap(Settings(database_url=postgres_url, data_dir=tmp_path / "data"))
    try:
        ledger = wired.ledger
        first = ledger.grant("ann", "ai-generative-training")
        schema = postgres_url.split("schema=")[1]
        with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as conn:
            for _ in range(3):  # what a rolled-back insert leaves behind
                conn.execute(
                    f"SELECT nextval('\"{schema}\".consentledger_events_notification_id_seq')"
                )
        second = ledger.revoke("ann", "ai-generative-training")
        assert second.position == first.position + 4
        assert wired.projector.catch_up() == second.position
        assert [row[0] for row in wired.projector.view.dump()["perm_clock"]] == [
            first.position,
            second.position,
        ]
        decision = wired.reader.check("ann", "ai-generative-training")
        assert decision.basis is Basis.EXPLICIT_REVOCATION
        assert decision.position == second.position
    finally:
        wired.close()


def test_the_background_projector_follows_new_events(services: Services) -> None:
    services.projector.start_background()
    try:
        numbers = count()
        for _ in range(3):
            receipt = services.ledger.grant(f"artist-{next(numbers)}", "data-mining")
            assert services.projector.wait_for(receipt.position, timeout=5)
    finally:
        services.projector.stop()
