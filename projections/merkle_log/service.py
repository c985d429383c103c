"""Keep the ledger's RFC 9162 transparency log as a tracked projection.

`LogService.catch_up` appends a batch of leaves, their interior nodes and the new
tracking row in ONE transaction, so a crash never leaves a leaf without its nodes or
a leaf counted twice; concurrent catch-ups are serialised by the tracking row (a
writer that lost the race drops its batch and reads on). Appending a leaf costs
O(log n): one read of the frontier and the nodes the leaf completes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

import structlog

from ledger.application import ConsentLedger
from ledger.backoff import store_outage
from ledger.checkpoint import SigningKey
from ledger.errors import InvalidInputError, StoreUnavailableError
from ledger.merkle import Frontier
from ledger.records import leaf_hash_of, record_of
from projections.database import Database
from projections.merkle_log.node_store import SqlNodeStore
from projections.merkle_log.proofs import LogProofs
from projections.merkle_log.types import LeafRow, decode_entry

__all__ = ["DEFAULT_BATCH", "LogService"]

DEFAULT_BATCH: Final = 1000  # leaves per catch-up transaction

_log = structlog.get_logger("projections.merkle_log")


class LogService(LogProofs):
    """Maintain the transparency log of a ledger and answer for it: checkpoints and proofs.

    One per deployment, wired by `services.bootstrap`. Construction does no I/O; the
    tables are created on first use (or by `create_tables`). The projection is only as
    fresh as its last `catch_up`: entrypoints that must cover the ledger's head (export,
    CLI proofs) call catch_up first; `LogAnswers` (HTTP) catches up briefly per request.
    """

    def __init__(
        self,
        ledger: ConsentLedger,
        database: Database,
        key: SigningKey,
        *,
        log_id: str,
        every_events: int = 1000,
        every_seconds: float = 60.0,
        retired_keys: Sequence[bytes] = (),
    ) -> None:
        """Wire the log; `log_id` is also the signed note's origin and key name.

        `retired_keys` are the raw Ed25519 public keys of signing keys rotated out: the
        checkpoints they signed stay trusted (`trusted_keys`).
        """
        if not log_id or any(char.isspace() or char == "+" for char in log_id):
            raise InvalidInputError(
                f"log id {log_id!r}: want a non-empty name without spaces or '+' "
                "(it is the C2SP checkpoint origin)"
            )
        if every_events < 1 or every_seconds <= 0:
            raise InvalidInputError(
                f"checkpoint policy: got every {every_events} events / {every_seconds} s, "
                "want at least 1 event and more than 0 s"
            )
        self.ledger = ledger
        self.database = database
        self.key = key
        self.log_id = log_id
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.retired_keys = tuple(retired_keys)
        self._tables_ready = False

    def trusted_keys(self) -> tuple[bytes, ...]:
        """Return the raw public keys whose checkpoints this log trusts: current, then retired."""
        return (self.key.public_key_raw(), *self.retired_keys)

    # ------------------------------------------------------------ the projection

    def catch_up(
        self,
        *,
        batch_size: int = DEFAULT_BATCH,
        deadline: float | None = None,
        progress: Callable[[int], None] | None = None,
        guard: Callable[[], bool] | None = None,
    ) -> int:
        """Log every ledger event not logged yet, in batches; return how many were appended.

        Each batch is one transaction (leaves, nodes, tracking). A checkpoint is taken
        after each batch and at the end whenever the policy says one is due.
        `deadline` is a time.monotonic() instant after which no new batch starts.
        `progress` gets the number of leaves appended so far. `guard` (a leader lease)
        is asked before each batch and checkpoint; False stops. Raises RecordError if a
        stored event cannot be rendered (then nothing of its batch is written).
        """
        if batch_size < 1:
            raise InvalidInputError(f"batch size: got {batch_size}, want >= 1")
        appended = 0
        while deadline is None or time.monotonic() < deadline:
            if guard is not None and not guard():
                return appended
            position, size = self.tracking()
            notifications = self.ledger.recorder.select_notifications(
                start=position, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                break
            rows = []
            for offset, notification in enumerate(notifications):
                entry = decode_entry(self.ledger, notification)
                leaf_hash = leaf_hash_of(record_of(entry, size + offset))
                rows.append(
                    LeafRow(size + offset, entry.position, str(entry.event.event_id), leaf_hash)
                )
            if self._append(position, size, rows):
                appended += len(rows)
                if progress is not None:
                    progress(appended)
                self.take_checkpoint()
        if guard is None or guard():
            self.take_checkpoint()
        return appended

    def run(self, stop: threading.Event, *, poll_seconds: float = 1.0) -> None:
        """Keep the log caught up and checkpointed until `stop` is set (a worker's loop).

        Every `poll_seconds` it catches up and takes the checkpoint the policy asks for,
        so time-based checkpoints are signed even when no event arrives. An unreachable
        store is logged and retried with back-off; any other LedgerError ends the loop.
        """
        retrying = store_outage(poll_seconds).retrying()
        while not stop.is_set():
            try:
                self.catch_up()
            except StoreUnavailableError as error:
                _log.warning("merkle_log_store_unavailable", error=error.detail)
                stop.wait(retrying.failed())
                continue
            retrying.succeeded()
            stop.wait(poll_seconds)

    def _append(self, position: int, size: int, rows: Sequence[LeafRow]) -> bool:
        """Append rows after (position, size) in one transaction; False if another writer won."""
        with self._transaction() as cursor:
            if self._tracking(cursor, lock=True) != (position, size):
                return False
            store = SqlNodeStore(cursor, self.database.dialect)
            _, nodes = Frontier.load(store, size).extend(row.leaf_hash for row in rows)
            cursor.executemany(
                self._sql(
                    "INSERT INTO merkle_leaves (leaf_index, position, event_id, leaf_hash) "
                    "VALUES (?, ?, ?, ?)"
                ),
                [(r.leaf_index, r.position, r.event_id, r.leaf_hash) for r in rows],
            )
            # The leaf rows are level 0; only the interior nodes go to merkle_nodes.
            store.put_many([node for node in nodes if node.level > 0])
            cursor.execute(
                self._sql("UPDATE merkle_tracking SET position = ?, tree_size = ? WHERE id = 1"),
                [rows[-1].position, size + len(rows)],
            )
        return True
