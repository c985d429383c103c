"""Pause between retries: exponential back-off, capped, optionally with full jitter.

The one back-off rule of the code base (the projection worker, the Merkle log's worker,
the Kafka relay and the write pipeline's optimistic-concurrency retry all use it).
Standard library only, no clock reads and no sleeping: callers wait the returned pause
on their own `threading.Event` or `time.sleep`, so a stop request is never delayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["STORE_OUTAGE_MAX_S", "Backoff", "Retrying", "store_outage"]

STORE_OUTAGE_MAX_S = 5.0
"""Longest wait, in seconds, between two attempts to reach an unreachable store."""


@dataclass(frozen=True)
class Backoff:
    """The pause after the n-th consecutive failure: `initial_s * factor**(n-1)`, capped.

    Requires 0 < initial_s <= max_s and factor >= 1 (seconds). With `jitter`, each pause
    is drawn uniformly from [0, capped pause] ("full jitter"), so competing writers that
    failed together do not retry together.
    """

    initial_s: float
    max_s: float
    factor: float = 2.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(
                f"back-off: got initial_s={self.initial_s}, max_s={self.max_s}; "
                "want 0 < initial_s <= max_s"
            )
        if self.factor < 1:
            raise ValueError(f"back-off: got factor={self.factor}, want >= 1")

    def pause(self, failures: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait after `failures` consecutive failures (requires >= 1)."""
        if failures < 1:
            raise ValueError(f"back-off: got failures={failures}, want >= 1")
        # Cap the exponent first: factor**n overflows a float long before max_s matters.
        capped = self.initial_s
        for _ in range(failures - 1):
            capped *= self.factor
            if capped >= self.max_s:
                break
        capped = min(capped, self.max_s)
        if not self.jitter:
            return capped
        return (rng or _RANDOM).uniform(0, capped)

    def retrying(self) -> Retrying:
        """Return a fresh counter of consecutive failures under this back-off."""
        return Retrying(self)


@dataclass
class Retrying:
    """Count consecutive failures of a loop and give the pause each one calls for."""

    backoff: Backoff
    failures: int = field(default=0)

    def failed(self) -> float:
        """Record one more failure; return the seconds to wait before the next attempt."""
        self.failures += 1
        return self.backoff.pause(self.failures)

    def succeeded(self) -> None:
        """Record a success: the next failure starts again from the initial pause."""
        self.failures = 0


def store_outage(poll_seconds: float) -> Backoff:
    """Return the back-off a polling worker uses while its store is unreachable.

    The first pause is twice the poll interval (at least 0.2 s), then doubles up to
    STORE_OUTAGE_MAX_S. Requires poll_seconds >= 0.
    """
    initial = min(max(poll_seconds, 0.1) * 2, STORE_OUTAGE_MAX_S)
    return Backoff(initial_s=initial, max_s=STORE_OUTAGE_MAX_S)


_RANDOM = random.Random()  # noqa: S311 - jitter spreads retries; it is not a secret
