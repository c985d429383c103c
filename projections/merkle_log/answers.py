"""Answer the HTTP routes for the transparency log with JSON objects."""

from __future__ import annotations

import time
from typing import Any

from projections.merkle_log.service import LogService
from projections.merkle_log.types import LogNotReadyError

__all__ = ["LogAnswers"]


class LogAnswers:
    """Answer the HTTP routes (services.http.routes.ledger.TransparencyLog) with JSON objects.

    Each answer first catches the log up for at most `catch_up_seconds`, so that a
    proof for a write just made is available without a background worker; a log far
    behind answers from what it holds (404 for what it does not yet).
    """

    def __init__(self, log: LogService, *, catch_up_seconds: float = 1.0) -> None:
        """Serve `log`; `catch_up_seconds` bounds the catch-up work done per request."""
        self.log = log
        self.catch_up_seconds = catch_up_seconds

    def checkpoint(self) -> dict[str, str | int]:
        """Return the latest signed checkpoint: checkpoint.json plus `note` (signed note)."""
        self._fresh()
        latest = self.log.checkpoint()
        if latest is None:
            raise LogNotReadyError("no signed checkpoint yet (the ledger is empty)")
        return latest.to_published_json()

    def inclusion_proof(self, position: int, tree_size: int | None) -> dict[str, Any]:
        """Return the inclusion proof of the event at `position` (LogService.inclusion)."""
        self._fresh()
        return self.log.inclusion(position, tree_size).to_json()

    def consistency_proof(self, first: int, second: int | None) -> dict[str, Any]:
        """Return the consistency proof from `first` to `second` (None: latest checkpoint)."""
        self._fresh()
        if second is None:
            latest = self.log.checkpoint()
            if latest is None:
                raise LogNotReadyError("no signed checkpoint yet (the ledger is empty)")
            second = latest.tree_size
        return self.log.consistency(first, second).to_json()

    def _fresh(self) -> None:
        """Catch the log up within the time budget."""
        self.log.catch_up(deadline=time.monotonic() + self.catch_up_seconds)
