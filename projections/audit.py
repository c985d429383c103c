"""Re-hash the stored ledger against its latest signed checkpoint; name the first bad position.

The audit reads the event store itself, never trusting the log's tables for the
hashes: every stored event is decoded, rendered as its record and re-hashed, and the
tree rebuilt from those hashes must have the signed root. Three sources pin down
*where* a difference lies:

1. each stored row must be byte for byte the encoding of the event it decodes to, so
   even a change that decodes to the same values (a hex digit's case) is caught;
2. when the log's own leaf rows rebuild the signed root, they are the committed leaf
   sequence (SHA-256 is collision resistant), so the first leaf where the re-hashed
   ledger departs from them is the first altered, removed, inserted or reordered
   position, exactly;
3. otherwise (the log's tables were damaged too) every stored signed checkpoint is
   checked against the re-hashed ledger, which bounds the first alteration to the
   leaves between the last checkpoint that still matches and the first that does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from eventsourcing.persistence import Notification

from ledger.checkpoint import CheckpointError, verify_signed_checkpoint
from ledger.encoding import b64encode
from ledger.errors import ConflictError, NotFoundError
from ledger.merkle import Frontier
from ledger.records import RecordError, leaf_hash_of, record_of
from projections.merkle_log import LeafRow, LogService, StoredCheckpoint, decode_entry

__all__ = [
    "AuditFinding",
    "AuditReport",
    "CheckpointUntrustedError",
    "NoCheckpointError",
    "audit_ledger",
]

DEFAULT_BATCH: Final = 1000


class NoCheckpointError(NotFoundError):
    """Signal that there is no signed checkpoint to audit against yet."""

    title = "No checkpoint"


class CheckpointUntrustedError(ConflictError):
    """Signal a stored checkpoint whose signature is not the log key's."""

    title = "Checkpoint not signed by the log key"


@dataclass(frozen=True)
class AuditFinding:
    """Say what is wrong at the first bad position of the ledger.

    kind: ``altered`` (the stored event differs from the committed one), ``removed``
    (a committed position holds no event), ``inserted`` (an event the log never
    committed), ``reordered`` (a position holds the event committed at another).
    """

    kind: str
    position: int
    leaf_index: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Return the finding as `audit --json` prints it."""
        return {
            "kind": self.kind,
            "position": self.position,
            "leaf_index": self.leaf_index,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditReport:
    """What an audit found.

    `finding` is the first bad position when it could be pinned down; when it could
    not (the log's tables are damaged too), `suspect_leaves` bounds it, as a leaf
    range [first, last], and `suspect_positions` gives the same range in positions.
    """

    checkpoint: StoredCheckpoint
    checked: int
    finding: AuditFinding | None
    suspect_leaves: tuple[int, int] | None
    suspect_positions: tuple[int, int] | None
    tables_match: bool  # the log's own leaf rows rebuild the signed root
    head_position: int  # the ledger's last position, covered or not by the checkpoint

    @property
    def ok(self) -> bool:
        """Tell whether the ledger matches its latest signed checkpoint."""
        return self.finding is None and self.suspect_leaves is None

    def to_json(self) -> dict[str, Any]:
        """Return the report as `audit --json` prints it."""
        return {
            "ok": self.ok,
            "checkpoint": self.checkpoint.to_json(),
            "checked": self.checked,
            "finding": self.finding.to_json() if self.finding else None,
            "suspect_leaves": list(self.suspect_leaves) if self.suspect_leaves else None,
            "suspect_positions": list(self.suspect_positions) if self.suspect_positions else None,
            "tables_match": self.tables_match,
            "head_position": self.head_position,
        }


@dataclass
class _Side:
    """One leaf as re-hashed from the event store."""

    position: int
    leaf_hash: bytes | None  # None: the stored bytes do not decode
    event_id: str | None
    problem: str | None  # why the stored bytes are wrong on their own, if they are


def audit_ledger(
    log: LogService,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> AuditReport:
    """Audit the event store against the log's latest signed checkpoint.

    Does not catch the log up (that would sign whatever the store holds now). Raises
    NoCheckpointError when no checkpoint exists and CheckpointUntrustedError when a
    stored checkpoint does not verify under the log's key. `progress` gets (leaves
    re-hashed, tree size) after each batch.
    """
    latest = log.checkpoint()
    if latest is None:
        raise NoCheckpointError("no signed checkpoint yet: nothing to audit against")
    _require_signed(log, latest)
    size = latest.tree_size
    want_root = latest.checkpoint.root_hash
    roots = _CheckpointRoots(log, size)
    ledger_frontier, stored_frontier = Frontier.empty(), Frontier.empty()
    first_diff: tuple[int, _Side | None, LeafRow | None] | None = None
    first_local: tuple[int, _Side] | None = None
    ledger_sides = _ledger_sides(log, size, batch_size)
    for start in range(0, size, batch_size):
        stop = min(size, start + batch_size)
        stored = log.leaves(start, stop)
        # zip takes from the range first, so it never draws a side beyond this batch
        sides = [side for _, side in zip(range(stop - start), ledger_sides, strict=False)]
        for offset in range(stop - start):
            side = sides[offset] if offset < len(sides) else None
            leaf = stored[offset] if offset < len(stored) else None
            if leaf is not None and leaf.leaf_index != start + offset:
                leaf = None
            if first_diff is None and _differs(side, leaf):
                first_diff = (start + offset, side, leaf)
            if first_local is None and side is not None and side.problem is not None:
                first_local = (start + offset, side)
        # An undecodable event has no hash; any placeholder breaks the root, as it must.
        ledger_frontier = roots.feed(
            ledger_frontier, [side.leaf_hash or bytes(32) for side in sides]
        )
        if len(stored) == stop - start and stored_frontier.size == start:
            stored_frontier, _ = stored_frontier.extend(leaf.leaf_hash for leaf in stored)
        if progress is not None:
            progress(stop, size)
    checked = ledger_frontier.size
    tables_match = stored_frontier.size == size and stored_frontier.root() == want_root
    ledger_matches = checked == size and ledger_frontier.root() == want_root
    head = log.ledger.recorder.max_notification_id() or 0

    def report(finding: AuditFinding | None, suspect: tuple[int, int] | None = None) -> AuditReport:
        positions = _positions_of(log, suspect) if suspect is not None else None
        return AuditReport(latest, checked, finding, suspect, positions, tables_match, head)

    if tables_match:
        # The leaf rows are the committed sequence: the first departure is exact.
        if first_diff is None:
            return report(None)
        index, side, leaf = first_diff
        assert leaf is not None  # the rows rebuild the signed root, so all of them exist
        return report(_finding(log, index, side, leaf))
    local = None
    if first_local is not None:
        index, side = first_local
        local = AuditFinding("altered", side.position, index, str(side.problem))
    if ledger_matches and local is None:
        return report(None)  # the ledger is intact; only the log's tables are damaged
    upper = first_local[0] if first_local is not None else None
    return report(local, roots.suspect(upper))


def _require_signed(log: LogService, checkpoint: StoredCheckpoint) -> None:
    """Raise CheckpointUntrustedError unless the checkpoint verifies under a log key.

    The log's keys are its current signing key and those rotated out (`retired_keys`).
    """
    stored = checkpoint.signed.public_key
    trusted = stored if stored in log.trusted_keys() else log.key.public_key_raw()
    try:
        verify_signed_checkpoint(checkpoint.to_json(), b64encode(trusted))
    except CheckpointError as error:
        raise CheckpointUntrustedError(
            f"checkpoint of tree size {checkpoint.tree_size}: {error}"
        ) from None


def _ledger_sides(log: LogService, size: int, batch_size: int) -> Iterator[_Side]:
    """Yield the first `size` stored events re-hashed as leaves, in position order."""
    ledger = log.ledger
    after, index = 0, 0
    while index < size:
        batch = ledger.recorder.select_notifications(
            start=after, limit=min(batch_size, size - index), inclusive_of_start=False
        )
        if not batch:
            return
        for notification in batch:
            yield _side(log, notification, index)
            index += 1
        after = batch[-1].id


def _side(log: LogService, notification: Notification, index: int) -> _Side:
    """Re-hash one stored event as leaf `index`; note a byte-level alteration."""
    try:
        entry = decode_entry(log.ledger, notification)
        leaf_hash = leaf_hash_of(record_of(entry, index))
    except RecordError as error:
        return _Side(notification.id, None, None, error.detail)
    problem = None
    event = entry.event
    # Events of a class_version above 1 may have been upcast on reading, so only
    # version-1 classes (all of them today) are held to their exact stored bytes.
    if getattr(type(event), "class_version", 1) == 1:
        again = log.ledger.mapper.to_stored_event(event)
        if (
            again.state != bytes(notification.state)
            or again.topic != notification.topic
            or str(again.originator_id) != str(notification.originator_id)
            or again.originator_version != notification.originator_version
        ):
            problem = (
                "the stored bytes are not the encoding of the event they decode to "
                "(a byte-level change)"
            )
    return _Side(notification.id, leaf_hash, str(event.event_id), problem)


def _differs(side: _Side | None, leaf: LeafRow | None) -> bool:
    """Tell whether a re-hashed ledger leaf is bad or departs from the stored leaf row."""
    if side is None or leaf is None:
        return True
    return side.problem is not None or (side.position, side.leaf_hash) != (
        leaf.position,
        leaf.leaf_hash,
    )


def _finding(log: LogService, index: int, side: _Side | None, leaf: LeafRow) -> AuditFinding:
    """Classify the first departure between the re-hashed ledger and the committed leaves."""
    if side is None:
        return AuditFinding(
            "removed",
            leaf.position,
            index,
            f"position {leaf.position} (event {leaf.event_id}, leaf {index}) is committed "
            "but the event store ends before it",
        )
    if side.position > leaf.position:
        return AuditFinding(
            "removed",
            leaf.position,
            index,
            f"position {leaf.position} (event {leaf.event_id}, leaf {index}) is committed but "
            f"the event store holds nothing there; its next event is at {side.position}",
        )
    if side.position < leaf.position:
        return AuditFinding(
            "inserted",
            side.position,
            index,
            f"position {side.position} holds an event the log never committed (leaf {index} "
            f"is the event at position {leaf.position})",
        )
    if side.leaf_hash is None:
        return AuditFinding("altered", side.position, index, str(side.problem))
    if side.event_id is not None and side.event_id != leaf.event_id:
        moved = log.leaf_with_event_id(side.event_id)
        if moved is not None:
            return AuditFinding(
                "reordered",
                side.position,
                index,
                f"position {side.position} holds event {side.event_id}, committed at position "
                f"{moved.position} (leaf {moved.leaf_index}); event {leaf.event_id} was "
                f"committed here",
            )
    if side.leaf_hash != leaf.leaf_hash:
        return AuditFinding(
            "altered",
            side.position,
            index,
            f"the stored event re-hashes to {side.leaf_hash.hex()}, but leaf {index} was "
            f"committed as {leaf.leaf_hash.hex()}",
        )
    return AuditFinding("altered", side.position, index, str(side.problem))


class _CheckpointRoots:
    """Compare the re-hashed ledger's root with every stored signed checkpoint on the way."""

    def __init__(self, log: LogService, size: int) -> None:
        self._log = log
        self._size = size
        self._checkpoints = (cp for cp in log.iter_checkpoints() if cp.tree_size <= size)
        self._next = next(self._checkpoints, None)
        self.last_good = 0  # tree size of the last checkpoint the ledger still matches
        self.first_bad: int | None = None  # tree size of the first one it does not

    def feed(self, frontier: Frontier, hashes: list[bytes]) -> Frontier:
        """Extend the frontier by hashes, checking each checkpoint size passed on the way."""
        done = 0
        while done < len(hashes):
            take = len(hashes) - done
            if self._next is not None:
                take = min(take, max(1, self._next.tree_size - frontier.size))
            frontier, _ = frontier.extend(hashes[done : done + take])
            done += take
            self._check(frontier)
        return frontier

    def _check(self, frontier: Frontier) -> None:
        """Compare the root at each checkpoint size the frontier has just reached."""
        while self._next is not None and self._next.tree_size <= frontier.size:
            checkpoint, self._next = self._next, next(self._checkpoints, None)
            if checkpoint.tree_size != frontier.size or self.first_bad is not None:
                continue
            _require_signed(self._log, checkpoint)
            if frontier.root() == checkpoint.checkpoint.root_hash:
                self.last_good = checkpoint.tree_size
            else:
                self.first_bad = checkpoint.tree_size

    def suspect(self, certain: int | None) -> tuple[int, int]:
        """Return the leaf range [first, last] holding the first alteration.

        After the last matching checkpoint; up to the first checkpoint that no longer
        matches (or the audited one), or to a leaf known to be altered, if earlier.
        """
        last = (self.first_bad if self.first_bad is not None else self._size) - 1
        if certain is not None:
            last = min(last, certain)
        return (min(self.last_good, last), last)


def _positions_of(log: LogService, leaves: tuple[int, int]) -> tuple[int, int]:
    """Return the ledger positions of the leaves [first, last], as re-read from the store."""
    first, last = leaves
    positions = [side.position for side in _ledger_sides(log, last + 1, DEFAULT_BATCH)]
    if not positions:
        return (0, 0)
    return (positions[min(first, len(positions) - 1)], positions[-1])
