"""Rebuild ledger entries from audit-export records, the inverse of `ledger.records`.

An auditor who has verified an export (`ledger.verify.verify_export`) can fold its
records through the same rules the ledger uses: `entry_of_record` turns one record back
into the event it was rendered from (instants and UUIDs parsed, the rest as is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from ledger.errors import LedgerError
from ledger.events import EVENT_TYPES, Entry, LedgerEvent

_RECORD_ONLY: Final = frozenset({"leaf_index", "position", "type", "stream_id", "stream_version"})
_RENAMED: Final = {"recorded_at": "timestamp"}


class ReplayError(LedgerError):
    """A record that cannot be turned back into a ledger event."""

    title = "Record cannot be replayed"


def entry_of_record(record: Mapping[str, Any]) -> Entry:
    """Return the ledger entry an export record was rendered from.

    Raises ReplayError for an unknown type or a field the event does not have.
    """
    kind = EVENT_TYPES.get(str(record.get("type")))
    if kind is None:
        raise ReplayError(f"record {record.get('leaf_index')}: unknown type {record.get('type')!r}")
    fields = {f.name: str(f.type) for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {
        "originator_id": UUID(str(record["stream_id"])),
        "originator_version": int(record["stream_version"]),
    }
    for name, value in record.items():
        if name in _RECORD_ONLY:
            continue
        target = _RENAMED.get(name, name)
        annotation = fields.get(target)
        if annotation is None:
            if value is None:
                continue  # "subject": null on events of no subject
            raise ReplayError(f"record {record.get('leaf_index')}: {kind.type_name} has no {name}")
        values[target] = _parse(value, annotation)
    try:
        event = kind(**values)
    except TypeError as error:
        raise ReplayError(f"record {record.get('leaf_index')}: {error}") from None
    assert isinstance(event, LedgerEvent)
    return Entry(int(record["position"]), event)


def _parse(value: Any, annotation: str) -> Any:
    if value is None:
        return None
    if annotation.startswith("datetime"):
        return datetime.fromisoformat(str(value))
    if annotation.startswith("UUID"):
        return UUID(str(value))
    return value
