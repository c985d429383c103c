"""The Kafka wire format of the ledger's topics (BRIEF §6): keys, JSON values, headers.

The relay builds records with these names (`services.kafka.records` turns ledger entries
into them) and the subscriber library reads them back with the same names, so the two
cannot drift. This module imports neither the ledger's events nor its database code: it
is all the subscriber needs. docs/kafka.md describes the format for other teams.

Every record carries the headers `position` (decimal ledger position; for a checkpoint,
its tree size), `event_id`, `type`, `schema` and `seq`. One ledger event may put several
records on one topic (a grant that flips three permissions); `seq` numbers them 0, 1, …
in a fixed order, so `(position, seq)` identifies a record on its topic, and a relay
that publishes an event again after a crash repeats exactly the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ledger.scopes import CATALOGUE, CONTENT_PREFIX, scope_text
from services.kafka.topics import TopicNames

HEADER_POSITION: Final = "position"
HEADER_EVENT_ID: Final = "event_id"
HEADER_TYPE: Final = "type"
HEADER_SCHEMA: Final = "schema"
HEADER_SEQ: Final = "seq"

SCHEMA_EVENT: Final = "consent.event/1"
SCHEMA_PERMISSION_CHANGE: Final = "consent.permission-change/1"
SCHEMA_PERMISSION: Final = "consent.permission/1"
SCHEMA_CHECKPOINT: Final = "consent.checkpoint/1"
SCHEMA_DATASET_IMPACT: Final = "consent.dataset-impact/1"
DATASET_KEY_PREFIX: Final = "dataset:"

KEY_SEPARATOR: Final = "|"
"""Joins `subject|purpose|party|scope`, the key of the permissions topic."""

TERMS_KEY_PREFIX: Final = "terms:"
"""Key of a TermsPublished event on the events topic: `terms:<version>` (it has no subject)."""

CHECKPOINT_TYPE: Final = "Checkpoint"
"""The `type` header of a checkpoint record (it is not a ledger event)."""


@dataclass(frozen=True)
class OutgoingRecord:
    """One record to publish: topic, key, value (None: a tombstone) and headers."""

    topic: str
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def position(self) -> int:
        """Return the ledger position (or checkpoint tree size) the record carries."""
        return int(dict(self.headers)[HEADER_POSITION])


def permission_key(subject: str, purpose: str, party: str, scope: str) -> str:
    """Return the key of the permissions topic: `subject|purpose|party|scope`."""
    return KEY_SEPARATOR.join((subject, purpose, party, scope))


def split_permission_key(key: str) -> tuple[str, str, str, str]:
    """Split `subject|purpose|party|scope`; raise ValueError unless it has four parts."""
    parts = key.split(KEY_SEPARATOR)
    if len(parts) != 4:
        raise ValueError(f"permission key {key!r}: want subject|purpose|party|scope")
    return parts[0], parts[1], parts[2], parts[3]


def headers(
    position: int, event_id: str, type_name: str, schema: str, seq: int
) -> tuple[tuple[str, bytes], ...]:
    """Return the five headers every record carries."""
    return (
        (HEADER_POSITION, str(position).encode()),
        (HEADER_EVENT_ID, event_id.encode()),
        (HEADER_TYPE, type_name.encode()),
        (HEADER_SCHEMA, schema.encode()),
        (HEADER_SEQ, str(seq).encode()),
    )


def decode_headers(raw: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """Return a record's headers as text (later duplicates win, None becomes '')."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in raw}


def event_scope(content_ids: Sequence[str] | None, aspect: str) -> str:
    """Return the scope of an event: `catalogue` or `content:<id>[,<id>…]`, then `/<aspect>`."""
    if content_ids is None:
        return scope_text(None, aspect)
    return scope_text(",".join(content_ids), aspect)


def checkpoint_record(checkpoint: Mapping[str, Any], names: TopicNames) -> OutgoingRecord:
    """Return the record of one signed checkpoint (a BRIEF §5 `checkpoint.json` object).

    Keyed by `log_id`; the `position` header holds its `tree_size`, and `event_id`
    `checkpoint:<log_id>:<tree_size>` (a checkpoint is not a ledger event).
    """
    log_id = str(checkpoint["log_id"])
    tree_size = int(checkpoint["tree_size"])
    return OutgoingRecord(
        names.checkpoints,
        log_id.encode(),
        orjson.dumps(dict(checkpoint)),
        headers(
            tree_size, f"checkpoint:{log_id}:{tree_size}", CHECKPOINT_TYPE, SCHEMA_CHECKPOINT, 0
        ),
    )


__all__ = [
    "CATALOGUE",
    "CHECKPOINT_TYPE",
    "CONTENT_PREFIX",
    "HEADER_EVENT_ID",
    "HEADER_POSITION",
    "HEADER_SCHEMA",
    "HEADER_SEQ",
    "HEADER_TYPE",
    "KEY_SEPARATOR",
    "SCHEMA_CHECKPOINT",
    "SCHEMA_EVENT",
    "SCHEMA_PERMISSION",
    "SCHEMA_PERMISSION_CHANGE",
    "TERMS_KEY_PREFIX",
    "OutgoingRecord",
    "checkpoint_record",
    "decode_headers",
    "headers",
    "permission_key",
    "split_permission_key",
]
