"""The values the transparency log stores and answers with, and its errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from eventsourcing.persistence import Notification
from eventsourcing.utils import TopicError

from ledger.application import ConsentLedger
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.errors import InvalidInputError, NotFoundError
from ledger.events import Entry
from ledger.records import RecordError

__all__ = [
    "DECODE_ERRORS",
    "ConsistencyProof",
    "InclusionProof",
    "LeafRow",
    "LogNotReadyError",
    "ProofRequestError",
    "StoredCheckpoint",
    "decode_entry",
    "leaf_of",
]

DECODE_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, TopicError)
"""What decoding a stored event raises when its bytes were altered (see decode_entry)."""


class ProofRequestError(InvalidInputError):
    """Refuse a proof request whose sizes or indices can never be proven (HTTP 422)."""

    title = "Invalid proof request"


class LogNotReadyError(NotFoundError):
    """Signal that the log does not hold what was asked yet: a position, size or checkpoint."""

    title = "Not in the log"


@dataclass(frozen=True, slots=True)
class LeafRow:
    """Hold one leaf of the log: its index, ledger position, event id and leaf hash."""

    leaf_index: int
    position: int
    event_id: str
    leaf_hash: bytes


@dataclass(frozen=True)
class InclusionProof:
    """Hold an RFC 9162 §2.1.3 inclusion proof of one ledger event in a tree size."""

    leaf_index: int
    position: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """Return the answer of `GET /v1/ledger/proofs/inclusion` (hashes in lowercase hex)."""
        return {
            "leaf_index": self.leaf_index,
            "position": self.position,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
            "root_hash": self.root_hash.hex(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """Hold an RFC 9162 §2.1.4 consistency proof between two tree sizes, with both roots."""

    first: int
    second: int
    proof: list[bytes]
    first_root: bytes
    second_root: bytes

    def to_json(self) -> dict[str, Any]:
        """Return the answer of `GET /v1/ledger/proofs/consistency` (and consistency.json)."""
        return {
            "first": self.first,
            "second": self.second,
            "proof": [h.hex() for h in self.proof],
            "first_root": self.first_root.hex(),
            "second_root": self.second_root.hex(),
        }


@dataclass(frozen=True)
class StoredCheckpoint:
    """Hold a signed checkpoint as stored: the JSON form's parts and the signed note."""

    signed: SignedCheckpoint
    note: str

    @property
    def checkpoint(self) -> Checkpoint:
        """Return the tree head this vouches for."""
        return self.signed.checkpoint

    @property
    def tree_size(self) -> int:
        """Return the tree size of the checkpoint."""
        return self.signed.checkpoint.tree_size

    def to_json(self) -> dict[str, str | int]:
        """Return checkpoint.json of BRIEF §5: exactly its six fields."""
        return self.signed.to_json()

    def to_published_json(self) -> dict[str, str | int]:
        """Return checkpoint.json plus `note`, the C2SP signed note (HTTP, Kafka, CLI)."""
        return {**self.signed.to_json(), "note": self.note}


def decode_entry(ledger: ConsentLedger, notification: Notification) -> Entry:
    """Return the ledger entry of a stored event; raise RecordError if its bytes do not decode.

    A stored event whose state or topic was altered may fail to decode in many ways
    (bad JSON or UTF-8, unknown topic, missing or extra fields); each is reported as
    the same finding: this position cannot be read as a ledger event.
    """
    try:
        entry = ledger.entry(notification)
    except DECODE_ERRORS as error:
        raise RecordError(
            f"stored event at position {notification.id} does not decode: "
            f"{type(error).__name__}: {error}"
        ) from None
    # The library fills an event's attributes from the stored state as it finds them: a
    # renamed or added key decodes without error. Fields an older event lacks are fine
    # (they have defaults); a key the event class does not declare is an alteration.
    declared = {field.name for field in dataclasses.fields(entry.event)}
    unknown = sorted(set(vars(entry.event)) - declared)
    if unknown:
        raise RecordError(
            f"stored event at position {notification.id} does not decode: "
            f"field(s) {', '.join(map(repr, unknown))} are not fields of "
            f"{type(entry.event).type_name}"
        )
    return entry


def leaf_of(row: Any) -> LeafRow:
    """Return a LeafRow from a (leaf_index, position, event_id, leaf_hash) row."""
    return LeafRow(int(row[0]), int(row[1]), str(row[2]), bytes(row[3]))
