"""The per-key token bucket: bursts up to the limit, refills at the rate, keys apart."""

from __future__ import annotations

import pytest

from services.http.rate_limit import RateLimiter, retry_after_header


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_burst_up_to_the_limit_then_waits_for_a_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("k") is None
    assert limiter.take("k") is not None


def test_keys_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=FakeClock())
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=2, clock=clock)
    clock.now += 3600
    assert [limiter.take("k") is None for _ in range(3)] == [True, True, False]


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0.5)])
def test_a_limiter_without_a_positive_rate_and_burst_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate limit needs"):
        RateLimiter(rate=rate, burst=burst)
