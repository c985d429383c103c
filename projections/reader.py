"""The read side's entry: answer permission questions for every entrypoint.

Entrypoints (CLI, HTTP, relay) ask here, never the event store directly, so the read
models can answer fast while the replay in `ConsentLedger.check` stays the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from ledger.application import ConsentLedger
from ledger.decisions import Decision
from ledger.vocabulary import ALL_ASPECTS, PLATFORM


class PermissionReader:
    """Answer `check` and `filter` questions (by replay until a read model is wired)."""

    def __init__(self, ledger: ConsentLedger) -> None:
        self.ledger = ledger

    def check(
        self,
        subject: str,
        purpose: str,
        *,
        party: str = PLATFORM,
        content: str | None = None,
        aspect: str = ALL_ASPECTS,
        at: datetime | None = None,
        known_at: datetime | None = None,
        min_position: int | None = None,
    ) -> Decision:
        """Answer one question; `min_position` asks to reflect at least that write."""
        return self.ledger.check(
            subject, purpose, party=party, content=content, aspect=aspect, at=at, known_at=known_at
        )

    def filter(
        self,
        purpose: str,
        pairs: Iterable[tuple[str, str]],
        *,
        party: str = PLATFORM,
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Iterator[tuple[str, str]]:
        """Yield the (subject, content) pairs that `party` may use for `purpose`."""
        for subject, content in pairs:
            decision = self.check(
                subject, purpose, party=party, content=content, at=at, known_at=known_at
            )
            if decision.allowed:
                yield subject, content
