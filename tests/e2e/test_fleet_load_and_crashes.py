"""Load and crashes through two API processes on one PostgreSQL.

- Load: 50 concurrent clients write a fixed count of grants and revocations for
  overlapping subjects; afterwards every acknowledged write is in the ledger exactly
  once, the Merkle log verifies, and the read models equal replay.
- Crashes: the API processes are killed with SIGKILL 30 times at random moments while
  writes go on; nothing acknowledged is lost and nothing is applied twice.

Each test prints its figures (writes/s, p99) for docs/reliability.md.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.verify import verify_export
from projections.export import export_ledger
from tests.e2e.fleet_support import (
    Fleet,
    Outcome,
    read_models_disagree_with_replay,
    stored_event_ids,
    write_until_acknowledged,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

CLIENTS = 50
WRITES_EACH = 20
KILLS = 30


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(postgres_url, tmp_path / "data", size=2)
    yield running
    running.stop()


def assert_exactly_once_and_verifiable(fleet: Fleet, outcome: Outcome, tmp_path: Path) -> None:
    assert not outcome.wrong, outcome.wrong[:5]
    services = fleet.services()
    try:
        stored = stored_event_ids(services)
        assert len(stored) == len(set(stored)), "an event was applied twice"
        assert set(stored) == set(outcome.acknowledged.values()), "ledger != acknowledged"
        services.log.catch_up()
        export_ledger(services.log, tmp_path / "export")
        report = verify_export(tmp_path / "export", public_key=services.log.key.public_key_raw())
        assert report.records == len(stored)
        assert read_models_disagree_with_replay(services) == []
    finally:
        services.close()


def test_fifty_clients_through_two_api_processes_lose_and_double_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    outcome = Outcome()
    deadline = time.monotonic() + 300

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=60) as http:
            for _ in range(WRITES_EACH):
                write_until_acknowledged(fleet, http, outcome, rng, deadline)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(outcome.acknowledged) == CLIENTS * WRITES_EACH
    print(
        f"\nload: {CLIENTS} clients, 2 API processes, PostgreSQL: "
        f"{len(outcome.acknowledged)} writes in {elapsed:.1f}s = "
        f"{len(outcome.acknowledged) / elapsed:.0f} writes/s, p99 {outcome.p99_ms():.0f} ms, "
        f"{outcome.retries} retries"
    )
    assert_exactly_once_and_verifiable(fleet, outcome, tmp_path)


def test_api_processes_killed_30_times_mid_write_lose_and_double_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    outcome = Outcome()
    done = threading.Event()
    deadline = time.monotonic() + 400

    def client(n: int) -> None:
        rng = random.Random(1000 + n)
        with httpx.Client(timeout=60) as http:
            while not done.is_set() and time.monotonic() < deadline:
                write_until_acknowledged(fleet, http, outcome, rng, deadline)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    rng = random.Random(7)
    try:
        while fleet.kills < KILLS:
            assert time.monotonic() < deadline, f"only {fleet.kills} kills in time"
            time.sleep(rng.uniform(0.05, 0.4))
            fleet.kill_and_restart(rng.randrange(2))
    finally:
        done.set()
        for thread in threads:
            thread.join()
    print(
        f"\ncrashes: {fleet.kills} SIGKILLs of API processes; {len(outcome.acknowledged)} "
        f"writes acknowledged, {outcome.retries} retries, none lost or doubled"
    )
    assert len(outcome.acknowledged) > KILLS
    assert_exactly_once_and_verifiable(fleet, outcome, tmp_path)
