"""The ledger's events: frozen, past tense, append-only, never renamed.

Every event is an `eventsourcing` domain event in one stream: a subject's stream
(acceptances, grants, revocations, expiries, voids, erasure) or a terms version's stream
(its publication). `timestamp` is the ledger clock (`recorded_at`); `effective_at` is when
the fact took effect in the world. The ledger `position` is the event's notification id,
assigned when it is recorded, so it lives beside the event (see `Entry`), not inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEvent

STREAM_NAMESPACE: Final = UUID("6f1e8f1c-2f5a-4c3e-9a43-7d1c5e0b9a11")


def subject_stream_id(subject: str) -> UUID:
    """Return the id of the stream that holds one subject's events."""
    return uuid5(STREAM_NAMESPACE, f"subject:{subject}")


def terms_stream_id(version: str) -> UUID:
    """Return the id of the stream that holds one terms version's publication."""
    return uuid5(STREAM_NAMESPACE, f"terms:{version}")


def dataset_stream_id(name: str) -> UUID:
    """Return the id of the stream that holds one training dataset's registration."""
    return uuid5(STREAM_NAMESPACE, f"dataset:{name}")


@dataclass(frozen=True)
class LedgerEvent(DomainEvent):
    """Base of every ledger event: an id, and when it took effect in the world."""

    type_name: ClassVar[str] = "LedgerEvent"
    # Fields added after events were stored: left out of the log record while None.
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    event_id: UUID
    effective_at: datetime

    @property
    def recorded_at(self) -> datetime:
        """Return the ledger clock's reading when the event was recorded."""
        return self.timestamp


@dataclass(frozen=True)
class SubjectEvent(LedgerEvent):
    """Base of the events about one rights holder."""

    subject: str


@dataclass(frozen=True)
class TermsPublished(LedgerEvent):
    """A terms version was published, with a default per purpose for the first party."""

    type_name: ClassVar[str] = "TermsPublished"

    version: str
    effective_from: datetime
    clauses: list[dict[str, str]]  # [{"purpose": ..., "default": "granted"|"denied"}]
    document_sha256: str | None

    def default_for(self, purpose: str) -> str | None:
        """Return the clause's default for `purpose`, or None if the terms are silent."""
        for clause in self.clauses:
            if clause["purpose"] == purpose:
                return clause["default"]
        return None


@dataclass(frozen=True)
class TermsAccepted(SubjectEvent):
    """A subject accepted a published terms version."""

    type_name: ClassVar[str] = "TermsAccepted"

    version: str
    evidence: dict[str, Any] | None
    # BRIEF §2.1; omitted from the record when None (the subject acted), so records of
    # events stored before agents existed stay byte-identical.
    actor: str | None = None

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"actor"})


@dataclass(frozen=True)
class ConsentGranted(SubjectEvent):
    """A subject allowed a party to use its catalogue or some content for a purpose."""

    type_name: ClassVar[str] = "ConsentGranted"

    purpose: str
    party: str
    content_ids: list[str] | None  # None: the whole catalogue, present and future
    aspect: str
    expires_at: datetime | None
    evidence: dict[str, Any] | None
    # BRIEF §2.1; each omitted from the record when None (see TermsAccepted.actor).
    actor: str | None = None
    model: str | None = None
    conditions: list[str] | None = None

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"actor", "model", "conditions"})


@dataclass(frozen=True)
class ConsentRevoked(SubjectEvent):
    """A subject withdrew or refused a party's use for a purpose."""

    type_name: ClassVar[str] = "ConsentRevoked"

    purpose: str
    party: str
    content_ids: list[str] | None
    aspect: str
    reason: str | None
    evidence: dict[str, Any] | None
    # BRIEF §2.1; each omitted from the record when None (see TermsAccepted.actor).
    actor: str | None = None
    model: str | None = None

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"actor", "model"})


@dataclass(frozen=True)
class ConsentExpired(SubjectEvent):
    """A grant reached its expiry; recorded so that subscribers hear of it."""

    type_name: ClassVar[str] = "ConsentExpired"

    grant_event_id: UUID
    purpose: str
    party: str
    content_ids: list[str] | None
    aspect: str


@dataclass(frozen=True)
class EventVoided(SubjectEvent):
    """An earlier grant, revocation or acceptance was entered in error."""

    type_name: ClassVar[str] = "EventVoided"

    voided_event_id: UUID
    reason: str


@dataclass(frozen=True)
class SubjectErased(SubjectEvent):
    """The subject's personal data was forgotten: its key is destroyed."""

    type_name: ClassVar[str] = "SubjectErased"

    reason: str | None


@dataclass(frozen=True)
class ContentRegistered(SubjectEvent):
    """The owner (`subject`) registered a content and its contributors (BRIEF §2.1).

    `contributors` holds `{"subject", "aspects"}` in registration order; aspects are
    among music, voice, likeness.
    """

    type_name: ClassVar[str] = "ContentRegistered"

    content_id: str
    contributors: list[dict[str, Any]]
    isrc: str | None
    iswc: str | None


@dataclass(frozen=True)
class AuthorityGranted(SubjectEvent):
    """The subject let `agent` act for it, for some purposes (None: all) until an expiry."""

    type_name: ClassVar[str] = "AuthorityGranted"

    agent: str
    purposes: list[str] | None
    expires_at: datetime | None


@dataclass(frozen=True)
class AuthorityRevoked(SubjectEvent):
    """The subject withdrew `agent`'s authority to act for it."""

    type_name: ClassVar[str] = "AuthorityRevoked"

    agent: str


@dataclass(frozen=True)
class DatasetRegistered(LedgerEvent):
    """A training dataset was built from a signed consent snapshot (its own stream).

    Names the snapshot (id, manifest digest, question, position, signed tree) and the
    model; `items_sha256` is the digest of the canonical list of pairs actually used.
    """

    type_name: ClassVar[str] = "DatasetRegistered"

    name: str
    snapshot_id: str
    manifest_sha256: str
    purpose: str
    party: str
    aspect: str
    snapshot_at: datetime
    snapshot_known_at: datetime
    snapshot_position: int
    tree_size: int
    root_hash: str
    model: str | None
    model_version: str | None
    items_sha256: str | None
    items_count: int | None


@dataclass(frozen=True)
class SignalsPublished(SubjectEvent):
    """The AI-usage signals a content (or, with content None, a catalogue) serves changed.

    Recorded on change, not per request, by the signals publisher. `digests` holds the
    SHA-256 (hex) of the exact bytes of each vocabulary's output, `vocabularies` the
    version of each mapping table used, `signals` the JSON body served. Kept in the
    subject's stream, so it is ordered with the consent facts that caused it.
    """

    type_name: ClassVar[str] = "SignalsPublished"

    content: str | None
    digests: dict[str, str]
    vocabularies: dict[str, str]
    signals: dict[str, Any]


VOIDABLE: Final = (TermsAccepted, ConsentGranted, ConsentRevoked, ContentRegistered)
EVENT_TYPES: Final[dict[str, type[LedgerEvent]]] = {
    cls.type_name: cls
    for cls in (
        TermsPublished,
        TermsAccepted,
        ConsentGranted,
        ConsentRevoked,
        ConsentExpired,
        EventVoided,
        SubjectErased,
        ContentRegistered,
        AuthorityGranted,
        AuthorityRevoked,
        DatasetRegistered,
        SignalsPublished,
    )
}


@dataclass(frozen=True)
class Entry:
    """An event as the ledger holds it: the event and its ledger position."""

    position: int
    event: LedgerEvent
