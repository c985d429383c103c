"""Training datasets built from consent snapshots: registration and impacts, pure parts.

`prepare_registration` validates a `DatasetRegistered` and returns it as a pending write
of the dataset's own stream (a dataset name is registered once). `items_digest` is the
canonical digest of the pairs a dataset used. `impact_of` tells whether an item the
snapshot allowed is denied now, and which event changed it; it decides with
`ledger.decisions.decide`, the one implementation of the rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import uuid4

from ledger.application import ConsentLedger, PendingWrite, StreamState
from ledger.decisions import Question, decide
from ledger.errors import ConflictError, InvalidInputError
from ledger.events import (
    ConsentExpired,
    DatasetRegistered,
    Entry,
    EventVoided,
    LedgerEvent,
    TermsPublished,
    dataset_stream_id,
)
from ledger.vocabulary import Basis, check_identifier

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL: Final = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


class DatasetAlreadyRegisteredError(ConflictError):
    """A dataset name that is registered already."""

    title = "Dataset already registered"

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} is registered already; datasets are registered once")


def check_dataset_name(name: str) -> str:
    """Return a valid dataset name or raise InvalidInputError."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"dataset name {name!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}"
        )
    return name


def items_digest(pairs: Iterable[tuple[str, str]]) -> tuple[str, int]:
    """Return (SHA-256 hex, count) of the canonical item list: unique pairs, sorted by
    (subject, content) code points, each written `subject,content\\n` in UTF-8."""
    digest = hashlib.sha256()
    count = 0
    for subject, content in sorted(set(pairs)):
        check_identifier(subject, field="item subject")
        check_identifier(content, field="item content")
        digest.update(f"{subject},{content}\n".encode())
        count += 1
    return digest.hexdigest(), count


@dataclass(frozen=True)
class Registration:
    """What `datasets register` records about a dataset and the snapshot it rests on."""

    name: str
    manifest: Mapping[str, Any]  # a verified snapshot manifest
    manifest_sha256: str
    at: datetime
    known_at: datetime
    model: str | None = None
    model_version: str | None = None
    items_sha256: str | None = None
    items_count: int | None = None


def prepare_registration(ledger: ConsentLedger, registration: Registration) -> PendingWrite:
    """Validate a registration and return it ready to append to the dataset's stream."""
    name = check_dataset_name(registration.name)
    for label, value in (
        ("model", registration.model),
        ("model version", registration.model_version),
    ):
        if value is not None and not _LABEL.match(value):
            raise InvalidInputError(f"{label} {value!r}: 1-128 characters, no spaces")
    if not _SHA256.match(registration.manifest_sha256):
        raise InvalidInputError("manifest_sha256 must be 64 lowercase hex characters")
    manifest = registration.manifest
    question = manifest["question"]
    event_id = uuid4()

    def build(state: StreamState) -> LedgerEvent:
        if state.events:
            raise DatasetAlreadyRegisteredError(name)
        now = ledger.clock.now()
        return DatasetRegistered(
            originator_id=state.stream_id,
            originator_version=state.next_version,
            timestamp=now,
            event_id=event_id,
            effective_at=now,
            name=name,
            snapshot_id=str(manifest["snapshot_id"]),
            manifest_sha256=registration.manifest_sha256,
            purpose=str(question["purpose"]),
            party=str(question["party"]),
            aspect=str(question["aspect"]),
            snapshot_at=registration.at,
            snapshot_known_at=registration.known_at,
            snapshot_position=int(manifest["position"]),
            tree_size=int(manifest["tree_size"]),
            root_hash=str(manifest["root_hash"]),
            model=registration.model,
            model_version=registration.model_version,
            items_sha256=registration.items_sha256,
            items_count=registration.items_count,
        )

    return PendingWrite(dataset_stream_id(name), build)


@dataclass(frozen=True)
class Impact:
    """An item the snapshot allowed that is denied now, and the event that changed it."""

    subject: str
    content: str | None
    basis: str
    event_id: str | None

    def to_json(self) -> dict[str, Any]:
        """Return `{subject, content, basis, event_id}` as impacts list it."""
        return {
            "subject": self.subject,
            "content": self.content,
            "basis": self.basis,
            "event_id": self.event_id,
        }


def impact_of(
    history: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: Question,
    position: int,
    snapshot_event_id: str | None,
) -> Impact | None:
    """Return the impact on an item the snapshot allowed (decided by `snapshot_event_id`),
    or None if `question` (the item, asked now) is still allowed.

    The event named is the void of the snapshot's deciding event if it was voided, the
    expiry record of an expired grant (the grant itself until one is recorded), else the
    revocation or erasure the decision names.
    """
    decision = decide(history, terms, question, position)
    if decision.allowed:
        return None
    known = [e.event for e in history if e.event.recorded_at <= question.known_at]
    changed: str | None = None
    for event in known:
        if isinstance(event, EventVoided) and str(event.voided_event_id) == snapshot_event_id:
            changed = str(event.event_id)
    if changed is None and decision.event_ids:
        deciding = decision.event_ids[0]
        changed = str(deciding)
        if decision.basis is Basis.GRANT_EXPIRED:
            for event in known:
                if isinstance(event, ConsentExpired) and event.grant_event_id == deciding:
                    changed = str(event.event_id)
    return Impact(question.subject, question.content, decision.basis.value, changed)
