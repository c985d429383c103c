"""Sign, store and read the log's checkpoints (signed tree heads, in both encodings)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.application import ConsentLedger
from ledger.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SigningKey,
    format_timestamp,
    parse_timestamp,
    sign_checkpoint,
    to_signed_note,
)
from ledger.merkle import Frontier
from projections.merkle_log.node_store import SqlNodeStore
from projections.merkle_log.tables import LogTables
from projections.merkle_log.types import StoredCheckpoint

__all__ = ["LogCheckpoints"]


class LogCheckpoints(LogTables):
    """Take a checkpoint when the policy says one is due; answer for stored ones."""

    ledger: ConsentLedger
    key: SigningKey
    log_id: str
    every_events: int
    every_seconds: float

    def checkpoint(self) -> StoredCheckpoint | None:
        """Return the latest signed checkpoint, or None if none was taken yet."""
        rows = self._checkpoint_rows("ORDER BY tree_size DESC LIMIT 1", [])
        return rows[0] if rows else None

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        """Return the signed checkpoint of exactly `tree_size`, or None."""
        rows = self._checkpoint_rows("WHERE tree_size = ?", [tree_size])
        return rows[0] if rows else None

    def checkpoints_after(self, tree_size: int, limit: int = 1000) -> list[dict[str, str | int]]:
        """Return up to `limit` signed checkpoints with a larger tree size, oldest first.

        Each is checkpoint.json plus `note` (StoredCheckpoint.to_published_json): what
        the Kafka relay publishes on consent.checkpoints.v1, keyed by log id, resuming
        from the tree size it published last.
        """
        rows = self._checkpoint_rows(
            "WHERE tree_size > ? ORDER BY tree_size LIMIT ?", [tree_size, limit]
        )
        return [row.to_published_json() for row in rows]

    def iter_checkpoints(self, batch: int = 1000) -> Iterator[StoredCheckpoint]:
        """Yield every stored checkpoint, by increasing tree size."""
        after = -1
        while True:
            rows = self._checkpoint_rows(
                "WHERE tree_size > ? ORDER BY tree_size LIMIT ?", [after, batch]
            )
            if not rows:
                return
            yield from rows
            after = rows[-1].tree_size

    def take_checkpoint(self, *, force: bool = False) -> StoredCheckpoint | None:
        """Sign and store a checkpoint of the logged tree if one is due; return it, or None.

        Due when the tree grew since the latest checkpoint by `every_events` leaves or
        more, or the latest is `every_seconds` old or older; the first checkpoint is
        due as soon as the tree has a leaf. With force, due whenever the tree grew (or
        no checkpoint exists at all, even of the empty tree). Never two checkpoints
        of one size: a concurrent taker's is returned instead.
        """
        size = self.tree_size()
        latest = self.checkpoint()
        if latest is not None and latest.tree_size >= size:
            return None
        if not force and not self._due(latest, size):
            return None
        with self._transaction() as cursor:
            root = Frontier.load(SqlNodeStore(cursor, self.database.dialect), size).root()
        checkpoint = Checkpoint(self.log_id, size, root, self.ledger.clock.now())
        signed = sign_checkpoint(checkpoint, self.key)
        note = to_signed_note(checkpoint, self.key, self.log_id)
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO checkpoints (tree_size, root_hash, timestamp, log_id, signature,"
                    " public_key, note) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tree_size)"
                    " DO NOTHING"
                ),
                [
                    size,
                    root,
                    format_timestamp(checkpoint.timestamp),
                    self.log_id,
                    signed.signature,
                    signed.public_key,
                    note,
                ],
            )
        return self.checkpoint_at(size)

    def _due(self, latest: StoredCheckpoint | None, size: int) -> bool:
        """Tell whether the policy asks for a checkpoint of `size` now."""
        if latest is None:
            return size > 0
        grown = size - latest.tree_size
        age = (self.ledger.clock.now() - latest.checkpoint.timestamp).total_seconds()
        return grown >= self.every_events or age >= self.every_seconds

    def head_checkpoint(self) -> StoredCheckpoint:
        """Return a signed checkpoint of the whole logged tree, signing one if needed."""
        taken = self.take_checkpoint(force=True)
        latest = taken or self.checkpoint()
        assert latest is not None  # force always leaves one
        return latest

    def _checkpoint_rows(self, tail: str, params: list[Any]) -> list[StoredCheckpoint]:
        """Return the checkpoints a WHERE/ORDER tail selects."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT log_id, tree_size, root_hash, timestamp, public_key, signature, note "
                    f"FROM checkpoints {tail}"
                ),
                params,
            )
            rows = cursor.fetchall()
        return [
            StoredCheckpoint(
                SignedCheckpoint(
                    Checkpoint(str(lid), int(size), bytes(root), parse_timestamp(str(ts))),
                    bytes(key),
                    bytes(signature),
                ),
                str(note),
            )
            for lid, size, root, ts, key, signature, note in rows
        ]
