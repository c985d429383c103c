"""The one back-off rule: doubling pauses, capped, reset by a success, jitter bounded."""

from __future__ import annotations

import random

import pytest

from ledger.backoff import STORE_OUTAGE_MAX_S, Backoff, store_outage


def test_pauses_double_from_the_initial_pause_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0)
    assert [backoff.pause(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert Backoff(initial_s=0.1, max_s=2.0).pause(100_000) == 2.0


def test_a_success_restarts_the_pauses_from_the_initial_one() -> None:
    retrying = Backoff(initial_s=0.5, max_s=4.0).retrying()
    assert [retrying.failed(), retrying.failed(), retrying.failed()] == [0.5, 1.0, 2.0]
    retrying.succeeded()
    assert retrying.failed() == 0.5


def test_jittered_pauses_lie_between_zero_and_the_capped_pause() -> None:
    backoff = Backoff(initial_s=0.002, max_s=0.05, jitter=True)
    rng = random.Random(7)
    for failures in range(1, 12):
        assert 0 <= backoff.pause(failures, rng) <= min(0.05, 0.002 * 2 ** (failures - 1))


def test_a_store_outage_waits_twice_the_poll_interval_first_and_at_most_five_seconds() -> None:
    assert store_outage(0.05).pause(1) == pytest.approx(0.2)
    assert store_outage(1.0).pause(1) == pytest.approx(2.0)
    assert store_outage(60.0).pause(1) == STORE_OUTAGE_MAX_S


@pytest.mark.parametrize(
    ("initial_s", "max_s", "factor"), [(0.0, 1.0, 2.0), (2.0, 1.0, 2.0), (0.1, 1.0, 0.5)]
)
def test_an_impossible_back_off_is_refused(initial_s: float, max_s: float, factor: float) -> None:
    with pytest.raises(ValueError, match="back-off"):
        Backoff(initial_s=initial_s, max_s=max_s, factor=factor)


def test_a_pause_before_any_failure_is_refused() -> None:
    with pytest.raises(ValueError, match="failures=0"):
        Backoff(initial_s=0.1, max_s=1.0).pause(0)
