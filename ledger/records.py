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
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import orjson
import rfc8785

from ledger.errors import LedgerError
from ledger.events import Entry, SubjectEvent
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

JCS_MAX_INTEGER: Final = 2**53 - 1  # RFC 8785 §3.2.2.3: integers are IEEE 754 doubles
_BMP_PRIVATE_USE: Final = "\ue000"  # from here up, UTF-16 and code-point order disagree

# Dataclass fields of eventsourcing's DomainEvent and LedgerEvent that the common
# fields above already carry, under the log's names.
_CARRIED: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "event_id", "effective_at", "subject"}
)


class RecordError(LedgerError):
    """Signal a stored event that cannot be rendered as a log record; names its position."""

    title = "Event cannot be rendered as a log record"


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
    for field in dataclasses.fields(event):
        if field.name in _CARRIED:
            continue
        if field.name in record:
            raise RecordError(
                f"event at position {entry.position}: field {field.name!r} collides with "
                "a common record field"
            )
        record[field.name] = _json_value(getattr(event, field.name), entry.position, field.name)
    return record


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 (JCS) serialisation of a JSON value, as UTF-8 bytes.

    orjson with sorted keys writes byte for byte what JCS writes when the value holds
    no floats, no integer beyond ±(2**53 - 1) and no object key with a character at
    or above U+E000 (where UTF-16 order, which JCS sorts by, departs from code-point
    order); that fast path is checked against the reference implementation in the
    tests. Anything else goes to the `rfc8785` reference. Raises RecordError if the
    value has no JCS form (an integer out of range, NaN, a non-string key).
    """
    if _orjson_writes_jcs(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as error:
            raise RecordError(f"value has no JSON form: {error}") from None
    try:
        data: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise RecordError(f"value has no RFC 8785 form: {error}") from None
    return data


def leaf_hash_of(record: Mapping[str, Any]) -> bytes:
    """Return the leaf hash SHA-256(0x00 || JCS(record)) of a record (RFC 9162 §2.1.1)."""
    return hash_leaf(canonical_json(record))


def _orjson_writes_jcs(value: Any) -> bool:
    """Tell whether orjson's sorted output of value is exactly its JCS form (see above).

    Iterative, with exact type tests: this runs once per record on every path (log,
    export, verify), so it is written for speed.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -JCS_MAX_INTEGER <= item <= JCS_MAX_INTEGER:
                return False
        elif kind is dict:
            try:
                joined = "".join(item)  # raises TypeError for a key that is not a str
            except TypeError:
                return False
            if not joined.isascii() and max(joined) >= _BMP_PRIVATE_USE:
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False  # floats (JCS uses ECMAScript number text) and anything else
    return True


def _instant(value: datetime, position: int, name: str) -> str:
    """Return an aware instant as log text, YYYY-MM-DDTHH:MM:SS.ffffffZ; refuse a naive one."""
    offset = value.utcoffset()
    if offset is None:
        raise RecordError(f"event at position {position}: {name} has no zone")
    if offset:
        value = value.astimezone(UTC)
    # isoformat ends in "+00:00" for any zero offset; it is faster than strftime.
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


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
