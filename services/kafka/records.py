"""Turn ledger entries into the Kafka records of the wire format (`services.kafka.wire`).

The relay's side of the format: it needs the ledger's events and the permission changes
derived from them, which the subscriber library does not, so it lives apart from the
names in `wire.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    DatasetRegistered,
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
)
from ledger.instants import format_instant
from projections.permission_changes import PermissionKey, PermissionState, SubjectStep
from services.kafka.topics import TopicNames
from services.kafka.wire import (
    DATASET_KEY_PREFIX,
    SCHEMA_DATASET_IMPACT,
    SCHEMA_EVENT,
    SCHEMA_PERMISSION,
    SCHEMA_PERMISSION_CHANGE,
    TERMS_KEY_PREFIX,
    OutgoingRecord,
    event_scope,
    headers,
    permission_key,
)


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
    if isinstance(event, DatasetRegistered):
        return f"{DATASET_KEY_PREFIX}{event.name}".encode()
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


def work_change_records(
    entry: Entry,
    changes: Sequence[tuple[str, PermissionState]],
    names: TopicNames,
    first_seq: int,
) -> list[OutgoingRecord]:
    """Return the permission changes an entry causes to the owners of works (BRIEF §2.1),
    keyed by each owner; their `seq` headers follow the entry's own changes'.
    """
    event = entry.event
    event_id, type_name = str(event.event_id), type(event).type_name
    return [
        OutgoingRecord(
            names.permission_changes,
            owner.encode(),
            orjson.dumps(permission_value(SubjectStep(entry, owner), state)),
            headers(entry.position, event_id, type_name, SCHEMA_PERMISSION_CHANGE, seq),
        )
        for seq, (owner, state) in enumerate(changes, first_seq)
    ]


def dataset_impact_records(
    entry: Entry, impacts: Sequence[tuple[DatasetRegistered, Mapping[str, Any]]], names: TopicNames
) -> list[OutgoingRecord]:
    """Return one consent.dataset-impacts.v1 record per (dataset, impact) an entry caused.

    Keyed by dataset name; headers carry the entry's position and event id (and `seq`,
    the impact's index within the entry), so consumers deduplicate as on other topics.
    """
    event = entry.event
    records = []
    for seq, (dataset, impact) in enumerate(impacts):
        value = {
            "dataset": dataset.name,
            "model": dataset.model,
            "model_version": dataset.model_version,
            "snapshot_id": dataset.snapshot_id,
            **impact,
            "type": type(event).type_name,
            "position": entry.position,
            "recorded_at": format_instant(event.recorded_at),
        }
        records.append(
            OutgoingRecord(
                names.dataset_impacts,
                dataset.name.encode(),
                orjson.dumps(value),
                headers(
                    entry.position,
                    str(event.event_id),
                    type(event).type_name,
                    SCHEMA_DATASET_IMPACT,
                    seq,
                ),
            )
        )
    return records
