"""Two real `consent-ledger worker` processes on one PostgreSQL ledger: one leads each duty.

The leader of the `log` duty is killed with SIGKILL, paused with SIGSTOP, or loses its
database session (`pg_terminate_backend`); the stand-by must sign a checkpoint of the
events written since within 5 s, and the log must hold every event exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.checkpoint import verify_signed_checkpoint
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.support.waiting import wait_until

TAKEOVER_SECONDS = 5.0


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """Settings of a fresh PostgreSQL ledger that checkpoints after every event."""
    return Settings(
        database_url=postgres_url,
        data_dir=tmp_path / "data",
        checkpoint_every_events=1,
        checkpoint_every_seconds=3600,
    )


@pytest.fixture
def pg_services(pg_settings: Settings) -> Iterator[Services]:
    """The wired services of the test's ledger (created before any worker starts)."""
    wired = bootstrap(pg_settings)
    yield wired
    wired.close()


def start_worker(settings: Settings, duties: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `consent-ledger worker --duties DUTIES` on the test's ledger."""
    env = dict(os.environ)
    env.update(
        LEDGER_DATABASE_URL=settings.database_url,
        LEDGER_DATA_DIR=str(settings.data_dir),
        LEDGER_LOG_FORMAT="json",
        LEDGER_CHECKPOINT_EVERY_EVENTS="1",
        LEDGER_CHECKPOINT_EVERY_SECONDS="3600",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker", "--duties", duties],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def leader_pid(services: Services, duty: str) -> int | None:
    """Return the pid the duty's leader recorded, if any."""
    row = services.leases.leaders().get(duty)
    return int(row["holder"].rsplit(":", 1)[1]) if row else None


def checkpoint_size(services: Services) -> int:
    """Return the tree size of the latest signed checkpoint (0 if none)."""
    latest = services.log.checkpoint()
    return latest.tree_size if latest else 0


def logged_positions(services: Services) -> list[int]:
    """Return the ledger positions of the log's leaves, in leaf order."""
    with services.database.transaction() as cursor:
        cursor.execute("SELECT position FROM merkle_leaves ORDER BY leaf_index")
        return [int(row[0]) for row in cursor.fetchall()]


def ledger_positions(services: Services) -> list[int]:
    """Return every ledger position, in order."""
    return [n.id for n in services.ledger.recorder.select_notifications(start=1, limit=10_000)]


def grant_some(services: Services, count: int, prefix: str) -> None:
    """Append `count` grants."""
    for n in range(count):
        services.ledger.grant(f"{prefix}-{n}", "ai-training", party="acme")


@pytest.mark.parametrize("failure", ["sigkill", "sigstop", "session-lost"])
def test_a_stand_by_worker_signs_the_next_checkpoint_within_five_seconds_of_the_leader_failing(
    pg_settings: Settings, pg_services: Services, tmp_path: Path, failure: str
) -> None:
    grant_some(pg_services, 3, "before")
    workers = [
        start_worker(pg_settings, "log,projector", tmp_path / f"worker-{n}.log") for n in range(2)
    ]
    by_pid = {w.pid: w for w in workers}
    try:
        wait_until(lambda: checkpoint_size(pg_services) == 3, 30, "first checkpoint")
        first = leader_pid(pg_services, "log")
        assert first in by_pid
        leader = by_pid[first]
        if failure == "sigkill":
            leader.send_signal(signal.SIGKILL)
        elif failure == "sigstop":
            leader.send_signal(signal.SIGSTOP)
        else:
            sessions = lock_pids_of(pg_services, first)
            assert sessions, "the leader holds no lock session"
            with psycopg.connect(pg_services.database.url.conninfo(), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [sessions]
                )
        failed_at = time.monotonic()
        grant_some(pg_services, 4, "after")
        wait_until(
            lambda: checkpoint_size(pg_services) == 7,
            TAKEOVER_SECONDS + 2,
            "checkpoint after takeover",
        )
        took = time.monotonic() - failed_at
        assert took < TAKEOVER_SECONDS + 1, f"takeover took {took:.2f} s"
        if failure != "session-lost":
            assert leader_pid(pg_services, "log") != first
        assert logged_positions(pg_services) == ledger_positions(pg_services)
        checkpoint = pg_services.log.checkpoint()
        assert checkpoint is not None
        signed = verify_signed_checkpoint(
            checkpoint.to_json(), pg_services.log.key.public_key_b64()
        )
        assert signed.tree_size == 7
        if failure == "sigstop":
            leader.send_signal(signal.SIGCONT)
            leader_log = tmp_path / f"worker-{workers.index(leader)}.log"
            wait_until(
                lambda: b"duty_lost" in leader_log.read_bytes(),
                10,
                "the resumed ex-leader noticing it lost the lease",
            )
            grant_some(pg_services, 2, "resumed")
            wait_until(lambda: checkpoint_size(pg_services) == 9, 10, "checkpoint after resume")
            assert logged_positions(pg_services) == ledger_positions(pg_services)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGCONT)
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()


def lock_pids_of(services: Services, worker_pid: int | None) -> list[int]:
    """Return the backend pids of the advisory-lock sessions a worker process holds."""
    with psycopg.connect(services.database.url.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
            [f"consent-ledger-lease:{worker_pid}"],
        ).fetchall()
    return [int(row[0]) for row in rows]
