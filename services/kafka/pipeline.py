"""Prepared relay batches: the records of a run of ledger entries, ready to send.

With `RelayOptions.pipeline_depth`, `Relay.run` keeps several in flight (`_Pipeline`): it
prepares batch N+1 while the producer's I/O thread sends batch N, and stores a batch's
position only once it and every batch before it are acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.events import Entry
from services.kafka.wire import OutgoingRecord


@dataclass(frozen=True)
class PreparedBatch:
    """The records of the ledger entries `first_position..last_position` (`events` of them)."""

    events: int
    first_position: int
    last_position: int
    records: list[OutgoingRecord]


@dataclass
class LedgerBatches:
    """Read and render the ledger batch after batch, from a position on (this process)."""

    read: Callable[[int, int], Sequence[Entry]]  # (after, limit) -> entries in ledger order
    render: Callable[[Sequence[Entry]], list[OutgoingRecord]]
    after: int
    batch_size: int

    def take(self) -> PreparedBatch | None:
        """Return the next batch, or None when the ledger holds nothing after it yet.

        Raises what `read` and `render` raise (StoreUnavailableError); the position to
        read from moves only when a batch is returned.
        """
        entries = self.read(self.after, self.batch_size)
        if not entries:
            return None
        records = self.render(entries)
        first, self.after = entries[0].position, entries[-1].position
        return PreparedBatch(len(entries), first, self.after, records)
