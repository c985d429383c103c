"""Per-key rate limiting: a token bucket for each API key, in one API process.

Each key may make `rate` requests a second on average, with bursts of up to `burst`.
A request over the limit is refused with 429 and a `Retry-After` header (whole seconds,
at least 1) saying when one token will be back. The buckets live in the process: with N
API processes a key's ceiling is N times `rate` (stated in docs/operations.md); a shared
limiter belongs in the gateway in front of a multi-process deployment.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_TRACKED_KEYS: Final = 100_000  # buckets beyond this are reset (full) rather than kept


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Admit or refuse requests per key name; thread-safe.

    Requires `rate > 0` and `burst >= 1`. `clock` returns monotonic seconds.
    """

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate limit needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one token of `key`'s bucket; return None, or seconds to wait if empty."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED_KEYS:
                    self._buckets.clear()
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return (1 - bucket.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Return a `Retry-After` value in whole seconds (RFC 9110 §10.2.3), at least 1."""
    return str(max(1, math.ceil(wait_s)))
