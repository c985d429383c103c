"""The Kafka wire format of the ledger's topics (BRIEF §6): keys, JSON values, headers.

The relay builds records here and the subscriber library reads them back with the same
names, so the two cannot drift. docs/kafka.md describes the format for other teams.

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

from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
)
from ledger.instants import format_instant
from projections.permission_changes import (
    CATALOGUE,
    CONTENT_PREFIX,
    PermissionKey,
    PermissionState,
    SubjectStep,
    scope_text,
)
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


def _explicit_fields(event: ConsentGranted | ConsentRevoked | ConsentExpired) -> dict[str, Any]:
    return {
        "purpose": event.purpose,
        "party": event.party,
        "scope": event_scope(event.content_ids, event.aspect),
        "content_ids": event.content_ids,
        "aspect": event.aspect,
    }


def event_value(entry: Entry, voided: LedgerEvent | None = None) -> dict[str, Any]:
    """Return the JSON value of a ledger event on the events topic.

    Never holds evidence or a reason (they may hold personal data). For a void,
    `voided` is the event it voids, whose purpose, party and scope it repeats.
    """
    event = entry.event
    value: dict[str, Any] = {
        "event_id": str(event.event_id),
        "position": entry.position,
        "type": type(event).type_name,
        "subject": event.subject if isinstance(event, SubjectEvent) else None,
        "purpose": None,
        "party": None,
        "scope": None,
        "effective_at": format_instant(event.effective_at),
        "recorded_at": format_instant(event.recorded_at),
    }
    if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
        value.update(_explicit_fields(event))
    if isinstance(event, ConsentGranted):
        value["expires_at"] = format_instant(event.expires_at) if event.expires_at else None
    elif isinstance(event, ConsentExpired):
        value["grant_event_id"] = str(event.grant_event_id)
    elif isinstance(event, TermsAccepted):
        value["version"] = event.version
    elif isinstance(event, TermsPublished):
        value["version"] = event.version
        value["effective_from"] = format_instant(event.effective_from)
        value["clauses"] = event.clauses
        value["document_sha256"] = event.document_sha256
    elif isinstance(event, EventVoided):
        value["voided_event_id"] = str(event.voided_event_id)
        if isinstance(voided, ConsentGranted | ConsentRevoked):
            value.update(_explicit_fields(voided))
        elif isinstance(voided, TermsAccepted):
            value["version"] = voided.version
    return value


def event_key(event: LedgerEvent) -> bytes:
    """Return the events-topic key: the subject, or `terms:<version>` for TermsPublished."""
    if isinstance(event, SubjectEvent):
        return event.subject.encode()
    assert isinstance(event, TermsPublished)
    return f"{TERMS_KEY_PREFIX}{event.version}".encode()


def permission_value(step: SubjectStep, state: PermissionState) -> dict[str, Any]:
    """Return the JSON value of a permission change or current state caused by `step`."""
    event = step.entry.event
    key = state.key
    return {
        "event_id": str(event.event_id),
        "position": step.entry.position,
        "type": type(event).type_name,
        "subject": step.subject,
        "purpose": key.purpose,
        "party": key.party,
        "scope": key.scope,
        "content": key.content,
        "aspect": key.aspect,
        "effective_at": format_instant(event.effective_at),
        "recorded_at": format_instant(event.recorded_at),
        "allowed": state.allowed,
        "basis": state.basis.value,
        "decision_event_ids": [str(i) for i in state.event_ids],
        "terms_version": state.terms_version,
    }


def entry_records(
    step: SubjectStep, names: TopicNames, voided: LedgerEvent | None = None
) -> list[OutgoingRecord]:
    """Return every record one ledger entry publishes, in publication order.

    The event itself; one permission change per flipped key; the new state of each new
    or changed key on the compacted topic, or on erasure a tombstone for every key.
    """
    entry, event = step.entry, step.entry.event
    event_id, type_name = str(event.event_id), type(event).type_name
    records = [
        OutgoingRecord(
            names.events,
            event_key(event),
            orjson.dumps(event_value(entry, voided)),
            headers(entry.position, event_id, type_name, SCHEMA_EVENT, 0),
        )
    ]
    if step.subject is None:
        return records
    subject_key = step.subject.encode()
    for seq, state in enumerate(step.changes):
        records.append(
            OutgoingRecord(
                names.permission_changes,
                subject_key,
                orjson.dumps(permission_value(step, state)),
                headers(entry.position, event_id, type_name, SCHEMA_PERMISSION_CHANGE, seq),
            )
        )
    current: list[tuple[PermissionKey, bytes | None]] = [
        (state.key, orjson.dumps(permission_value(step, state))) for state in step.states
    ] + [(key, None) for key in step.erased]
    for seq, (key, value) in enumerate(current):
        records.append(
            OutgoingRecord(
                names.permissions,
                permission_key(step.subject, key.purpose, key.party, key.scope).encode(),
                value,
                headers(entry.position, event_id, type_name, SCHEMA_PERMISSION, seq),
            )
        )
    return records


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
    "entry_records",
    "event_key",
    "event_value",
    "headers",
    "permission_key",
    "permission_value",
    "split_permission_key",
]
