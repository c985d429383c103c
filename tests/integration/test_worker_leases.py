"""Leases on both backends: one holder per duty, handed over on release, fencing the writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from services.bootstrap import Services, bootstrap
from services.cli.main import main
from services.settings import Settings
from services.worker import parse_duties


def test_one_lease_of_a_duty_is_held_at_a_time_and_a_release_hands_it_over(
    services: Services,
) -> None:
    first, second = services.leases.lease("log"), services.leases.lease("log")
    other_duty = services.leases.lease("projector")
    try:
        assert first.held()
        assert not second.held()
        assert other_duty.held()  # duties are independent
        assert first.held()  # asking again keeps it (and checks the session)
        first.release()
        assert second.held()
        assert not first.held()
        assert services.leases.leaders()["log"]["holder"].endswith(
            services.leases.leaders()["projector"]["holder"].rsplit(":", 1)[1]
        )
    finally:
        for lease in (first, second, other_duty):
            lease.release()


def test_a_projector_whose_lease_was_taken_over_applies_no_further_batch(
    postgres_url: str, tmp_path: Path
) -> None:
    services = bootstrap(Settings(database_url=postgres_url, data_dir=tmp_path / "data"))
    leader, standby = services.leases.lease("projector"), services.leases.lease("projector")
    try:
        services.ledger.grant("artist-1", "ai-training", party="acme")
        assert leader.held()
        with psycopg.connect(services.database.url.conninfo(), autocommit=True) as conn:
            conn.execute(  # the leader's lock session ends (failover, admin, timeout)
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [f"consent-ledger-lease:{os.getpid()}"],
            )
        deadline = time.monotonic() + 5
        while not standby.held():
            assert time.monotonic() < deadline, "the stand-by never got the free lock"
            time.sleep(0.05)
        before = services.projector.position()
        assert services.projector.catch_up(guard=leader.held) == before
        assert services.projector.position() == before
        assert services.projector.catch_up(guard=standby.held) > before
    finally:
        leader.release()
        standby.release()
        services.close()


def test_worker_refuses_an_unknown_duty_with_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir)]
    assert main(["worker", "--duties", "log,sweeping", *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "consent-ledger: error: --duties 'log,sweeping': unknown duty sweeping; "
        "known duties: projector, log, expiry, relay"
    ]
    assert parse_duties(None) == ["projector", "log", "expiry", "relay"]
