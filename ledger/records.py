"""Render a ledger event as the record the transparency log hashes (BRIEF §5).

A record is a flat JSON object: the log's own fields (leaf_index, position), the fields
every event has, then every field of the event's dataclass, with instants as ISO 8601
UTC text (microseconds, ``Z``) and UUIDs in their canonical hyphenated form. Evidence
is rendered exactly as stored: personal data only as AES-GCM ciphertext under
``evidence["sealed"]``, so erasing a subject (destroying its key) never changes a
record, a leaf hash or a proof.

The leaf hash is ``SHA-256(0x00 || JCS(record))`` (RFC 9162 §2.1.1 over RFC 8785).
The record of an event must never change once hashed: renaming, adding or re-encoding
a field breaks every proof issued for it, so this module is part of the log's format
(docs/audit-export.md), not a presentation layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from ledger.encoding import RecordError, canonical_json
from ledger.errors import InvalidInstantError
from ledger.events import Entry, SubjectEvent
from ledger.instants import format_instant
from ledger.merkle import hash_leaf

__all__ = [
    "COMMON_FIELDS",
    "RecordError",
    "canonical_json",
    "leaf_hash_of",
    "record_of",
]

COMMON_FIELDS: Final = (
    "leaf_index",
    "position",
    "event_id",
    "type",
    "subject",
    "recorded_at",
    "effective_at",
    "stream_id",
    "stream_version",
)
"""The fields every record has, whatever the event type; the rest are the event's own."""


# Dataclass fields of eventsourcing's DomainEvent and LedgerEvent that the common
# fields above already carry, under the log's names.
_CARRIED: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "event_id", "effective_at", "subject"}
)


def record_of(entry: Entry, leaf_index: int) -> dict[str, Any]:
    """Return the log record of a ledger entry that is leaf `leaf_index` of the log.

    Pure: the same entry and index always give the same record. Requires leaf_index >=
    0 and an event whose values are JSON-representable (str, int, float, bool, None,
    lists, string-keyed objects, aware datetimes, UUIDs); raises RecordError otherwise,
    also for an event decoded from damaged bytes (a field missing or of the wrong type).
    """
    try:
        return _record_of(entry, leaf_index)
    except (AttributeError, TypeError) as error:
        raise RecordError(
            f"event at position {entry.position} is not a well-formed ledger event: "
            f"{type(error).__name__}: {error}"
        ) from None


def _record_of(entry: Entry, leaf_index: int) -> dict[str, Any]:
    if leaf_index < 0:
        raise RecordError(f"leaf_index: got {leaf_index}, want >= 0")
    event = entry.event
    record: dict[str, Any] = {
        "leaf_index": leaf_index,
        "position": entry.position,
        "event_id": str(event.event_id),
        "type": type(event).type_name,
        "subject": event.subject if isinstance(event, SubjectEvent) else None,
        "recorded_at": _instant(event.recorded_at, entry.position, "recorded_at"),
        "effective_at": _instant(event.effective_at, entry.position, "effective_at"),
        "stream_id": str(event.originator_id),
        "stream_version": event.originator_version,
    }
    omitted = event.omitted_when_none
    for field in dataclasses.fields(event):
        if field.name in _CARRIED:
            continue
        if field.name in omitted and getattr(event, field.name) is None:
            continue
        if field.name in record:
            raise RecordError(
                f"event at position {entry.position}: field {field.name!r} collides with "
                "a common record field"
            )
        record[field.name] = _json_value(getattr(event, field.name), entry.position, field.name)
    return record


def leaf_hash_of(record: Mapping[str, Any]) -> bytes:
    """Return the leaf hash SHA-256(0x00 || JCS(record)) of a record (RFC 9162 §2.1.1)."""
    return hash_leaf(canonical_json(record))


def _instant(value: datetime, position: int, name: str) -> str:
    """Return an aware instant as log text, YYYY-MM-DDTHH:MM:SS.ffffffZ; refuse a naive one."""
    try:
        return format_instant(value)
    except InvalidInstantError:
        raise RecordError(f"event at position {position}: {name} has no zone") from None


def _json_value(value: Any, position: int, name: str) -> Any:
    """Return an event field's value in the record's JSON form."""
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    if isinstance(value, datetime):
        return _instant(value, position, name)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(item, position, name) for item in value]
    if isinstance(value, Mapping):
        rendered: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(
                    f"event at position {position}: {name} has a key of type "
                    f"{type(key).__name__}, want str"
                )
            rendered[key] = _json_value(item, position, name)
        return rendered
    raise RecordError(
        f"event at position {position}: {name} holds a {type(value).__name__}, "
        "which has no JSON form in a record"
    )
