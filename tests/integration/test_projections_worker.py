"""The projections worker survives crashes: nothing is lost, nothing is applied twice.

The worker runs as a real `consent-ledger project` process. It is killed mid-batch,
between writing a batch's rows and its tracking record, right after a commit (by the
test-side wrapper tests/support/projection_faults.py, which calls `os._exit`), and by
SIGKILL at an arbitrary moment. After each death the read models must hold exactly the
batches whose tracking record was committed, and after a restart they must equal a
rebuild from position 0 and answer as the replay does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import write_history
from tests.support.projection_faults import FAULT_EXIT_CODE

PURPOSES = ("ai-training", "ai-generative-training")


def worker(settings: Settings, *args: str, fault: str | None = None) -> subprocess.Popen[str]:
    """Start `consent-ledger project ARGS` on the test's database."""
    env = dict(os.environ)
    env.update(
        LEDGER_DATABASE_URL=settings.database_url,
        LEDGER_DATA_DIR=str(settings.data_dir),
        LEDGER_LOG_FORMAT="json",
        LEDGER_LOG_LEVEL="warning",
    )
    # A fault runs the worker under the test-side wrapper that crashes it at that point.
    command = ["services.cli.main"] if fault is None else ["tests.support.projection_faults", fault]
    return subprocess.Popen(
        [sys.executable, "-m", *command, "project", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_worker(settings: Settings, *args: str, fault: str | None = None) -> int:
    """Run the worker to its end; return its exit code."""
    process = worker(settings, *args, fault=fault)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, FAULT_EXIT_CODE), err
    return process.returncode


def assert_consistent(services: Services) -> int:
    """Assert the read models hold exactly the events up to their tracked position."""
    view = services.projector.view
    position = view.position()
    clock = view.dump()["perm_clock"]
    projected = [row[0] for row in clock]
    expected = [e.position for e in services.ledger.iter_entries(0) if e.position <= position]
    assert projected == expected, f"tracked at {position}, view holds {projected[-3:]}"
    return position


def assert_equals_rebuild_and_replay(services: Services, settings: Settings) -> None:
    """Assert the tables equal a rebuild from 0, and answers equal the replay."""
    head = services.ledger.ledger_position()
    assert services.projector.view.position() == head
    resumed = services.projector.view.dump()
    assert run_worker(settings, "--rebuild", "--once", "--batch-size", "50") == 0
    assert services.projector.view.position() == head
    assert services.projector.view.dump() == resumed
    for n in range(12):
        for purpose in PURPOSES:
            for party in ("platform", "*", "acme", "beta"):
                subject = f"artist-{n}"
                question = services.ledger.question(subject, purpose, party, f"track-{n}")
                expected = services.ledger.check(
                    subject, purpose, party=party, content=f"track-{n}"
                )
                assert services.reader.answer(question, known_at_given=False) == expected


@pytest.mark.parametrize("point", ["mid-batch", "before-tracking", "after-commit"])
def test_worker_killed_in_a_batch_loses_nothing_and_applies_nothing_twice(
    services: Services, settings: Settings, point: str
) -> None:
    write_history(services, subjects=40)
    assert run_worker(settings, "--once", "--batch-size", "7", fault=f"{point}:3") == (
        FAULT_EXIT_CODE
    )
    position = assert_consistent(services)
    committed = 3 if point == "after-commit" else 2
    assert len(services.projector.view.dump()["perm_clock"]) == committed * 7
    assert position == [e.position for e in services.ledger.iter_entries(0)][committed * 7 - 1]

    assert run_worker(settings, "--once", "--batch-size", "7") == 0
    assert_equals_rebuild_and_replay(services, settings)


def test_worker_killed_by_sigkill_resumes_where_its_tracking_record_says(
    services: Services, settings: Settings
) -> None:
    write_history(services, subjects=150)
    process = worker(settings, "--batch-size", "2")
    deadline = time.monotonic() + 60
    while services.projector.view.position() < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    position = assert_consistent(services)
    assert 0 < position < services.ledger.ledger_position()

    assert run_worker(settings, "--once", "--batch-size", "3") == 0
    assert_equals_rebuild_and_replay(services, settings)


def test_two_workers_at_once_apply_each_event_exactly_once(
    services: Services, settings: Settings
) -> None:
    write_history(services, subjects=60)
    first = worker(settings, "--once", "--batch-size", "3")
    second = worker(settings, "--once", "--batch-size", "5")
    for process in (first, second):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert_consistent(services)
    assert_equals_rebuild_and_replay(services, settings)


def test_worker_stops_cleanly_on_sigterm(services: Services, settings: Settings) -> None:
    write_history(services, subjects=5)
    process = worker(settings)
    deadline = time.monotonic() + 30
    while services.projector.view.position() < services.ledger.ledger_position():
        assert time.monotonic() < deadline, "the worker did not catch up"
        time.sleep(0.02)
    later = services.ledger.grant("artist-0", "data-mining")
    while services.projector.view.position() < later.position:
        assert time.monotonic() < deadline, "the worker did not follow a new event"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
