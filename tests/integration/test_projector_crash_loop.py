"""The projector SIGKILLed 30 times at random moments, most inside a batch's transaction:
after each kill the read models hold exactly the events up to their tracking position,
and once caught up they equal a rebuild and the replay.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import write_history
from tests.integration.test_projections_worker import (
    assert_consistent,
    assert_equals_rebuild_and_replay,
    run_worker,
    worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

KILLS = 30


def test_the_projector_killed_30_times_mid_transaction_ends_equal_to_replay(
    services: Services, settings: Settings
) -> None:
    write_history(services, subjects=400)
    head = services.ledger.ledger_position()
    rng = random.Random(30)
    positions = []
    for _ in range(KILLS):
        process = worker(settings, "--batch-size", "3")
        start = services.projector.view.position()
        deadline = time.monotonic() + 60
        # let it start and make some progress, then kill it at a random moment
        while services.projector.view.position() == start and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        positions.append(assert_consistent(services))
        if positions[-1] == head:  # caught up before the kill: give it more to do
            write_history_more(services, len(positions))
            head = services.ledger.ledger_position()
    assert positions == sorted(positions), "a kill lost committed projection work"
    assert run_worker(settings, "--once", "--batch-size", "50") == 0
    assert_equals_rebuild_and_replay(services, settings)


def write_history_more(services: Services, round_: int) -> None:
    """Add a few more events so that the next worker has work to be killed in."""
    for n in range(30):
        services.ledger.grant(f"more-{n}", "ai-training", party="acme", content_ids=[f"r{round_}"])
