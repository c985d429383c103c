"""The ledger's writes as commands: frozen values, checked when they are made.

A command says what a caller asks the ledger to record. Making one checks everything
that needs no ledger state (identifier, party and aspect syntax, zones on instants, the
shape of clauses, reasons and evidence) and raises a LedgerError otherwise; the checks
that need the ledger's state or its vocabulary (erasure, voids, published terms, known
purposes) are the deciders' (`ledger.deciders`). Every command carries the id of the
event it will record, chosen when it is made, so a caller can name that event before it
is appended (the HTTP idempotency records it).

Instants are timezone-aware datetimes, held in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid4

from ledger.errors import InvalidExpiryError, InvalidInputError, InvalidTermsError
from ledger.events import dataset_stream_id, subject_stream_id, terms_stream_id
from ledger.instants import format_instant, require_aware
from ledger.rights import check_contributors, check_isrc, check_iswc
from ledger.vocabulary import (
    ALL_ASPECTS,
    PLATFORM,
    check_agent,
    check_aspect,
    check_condition,
    check_identifier,
    check_model,
    check_party,
)

MAX_REASON_CHARS: Final = 2000
TERMS_DEFAULTS: Final = ("granted", "denied")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every write: the id of the event it will record."""

    event_id: UUID = field(default_factory=uuid4)

    @property
    def stream_id(self) -> UUID | None:
        """Return the stream the command appends to (None: found from the ledger)."""
        raise NotImplementedError


def _set(command: Command, name: str, value: object) -> None:
    object.__setattr__(command, name, value)  # normalising a frozen field in __post_init__


def _aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else require_aware(value, field=name)


def _reason(reason: str | None, *, required: bool) -> None:
    if reason is None or not reason.strip():
        if required:
            raise InvalidInputError("a reason is required")
        return
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInputError(f"reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")


def _content_ids(content_ids: Sequence[str] | None) -> tuple[str, ...] | None:
    if content_ids is None:
        return None
    if isinstance(content_ids, str):
        raise InvalidInputError("content_ids must be a list of content ids")
    ids = [check_identifier(c, field="content id") for c in content_ids]
    if not ids:
        raise InvalidInputError("content_ids, when given, must name at least one content id")
    return tuple(sorted(set(ids)))


def _evidence(evidence: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if evidence is not None and not isinstance(evidence, Mapping):
        raise InvalidInputError("evidence must be a JSON object")
    return evidence


@dataclass(frozen=True, kw_only=True)
class PublishTerms(Command):
    """Publish a terms version: its clauses default first-party purposes.

    Requires a version `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, an aware `effective_from`, each
    clause `{purpose, default: granted|denied}` once per purpose, and `document_sha256`
    as 64 lowercase hex characters when given.
    """

    version: str
    effective_from: datetime
    clauses: Sequence[Mapping[str, str]] = ()
    document_sha256: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not _VERSION.match(self.version):
            raise InvalidTermsError(
                f"terms version {self.version!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}"
            )
        _set(self, "effective_from", require_aware(self.effective_from, field="effective_from"))
        if self.document_sha256 is not None and not _SHA256.match(self.document_sha256):
            raise InvalidTermsError("document_sha256 must be 64 lowercase hex characters")
        clauses = tuple(dict(c) for c in self.clauses)
        seen: set[str] = set()
        for clause in clauses:
            purpose, default = str(clause.get("purpose")), clause.get("default")
            if default not in TERMS_DEFAULTS:
                raise InvalidTermsError(
                    f"clause for {purpose!r}: default must be 'granted' or 'denied', "
                    f"got {default!r}"
                )
            if purpose in seen:
                raise InvalidTermsError(f"clause for {purpose!r} appears twice")
            seen.add(purpose)
        _set(self, "clauses", clauses)

    @property
    def stream_id(self) -> UUID:
        """Return the terms version's own stream."""
        return terms_stream_id(self.version)


@dataclass(frozen=True, kw_only=True)
class SubjectCommand(Command):
    """Base of the writes to one subject's stream."""

    subject: str

    def __post_init__(self) -> None:
        check_identifier(self.subject, field="subject")

    @property
    def stream_id(self) -> UUID:
        """Return the subject's stream."""
        return subject_stream_id(self.subject)


@dataclass(frozen=True, kw_only=True)
class AcceptTerms(SubjectCommand):
    """Record that a subject accepted a published terms version."""

    version: str
    effective_at: datetime | None = None
    evidence: Mapping[str, Any] | None = None
    actor: str | None = None  # BRIEF §2.1: None (or the subject) when it acts itself

    def __post_init__(self) -> None:
        super().__post_init__()
        _set(self, "effective_at", _aware(self.effective_at, "effective_at"))
        _evidence(self.evidence)
        _set(self, "actor", _actor(self.subject, self.actor))


@dataclass(frozen=True, kw_only=True)
class _Scoped(SubjectCommand):
    """The words grants and revocations share: purpose, party, scope, aspect, times."""

    purpose: str
    party: str = PLATFORM
    content_ids: Sequence[str] | None = None  # held sorted, once each, as a tuple
    aspect: str = ALL_ASPECTS
    effective_at: datetime | None = None
    evidence: Mapping[str, Any] | None = None
    model: str | None = None  # BRIEF §2.1
    actor: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_party(self.party)
        check_aspect(self.aspect)
        _set(self, "content_ids", _content_ids(self.content_ids))
        _set(self, "effective_at", _aware(self.effective_at, "effective_at"))
        _evidence(self.evidence)
        if self.model is not None:
            check_model(self.model)
        _set(self, "actor", _actor(self.subject, self.actor))


@dataclass(frozen=True, kw_only=True)
class Grant(_Scoped):
    """Record a subject's grant of a purpose to a party, for a scope and aspect.

    Requires `expires_at`, when given, after `effective_at` (or after the moment the
    grant is recorded, when `effective_at` is absent: the decider checks that).
    """

    expires_at: datetime | None = None
    conditions: Sequence[str] | None = None  # BRIEF §2.1: held as a tuple, None if none

    def __post_init__(self) -> None:
        super().__post_init__()
        conditions = tuple(check_condition(c) for c in self.conditions or ())
        _set(self, "conditions", conditions or None)
        expires_at = _aware(self.expires_at, "expires_at")
        _set(self, "expires_at", expires_at)
        if expires_at is not None and self.effective_at is not None:
            check_expiry(expires_at, self.effective_at)


@dataclass(frozen=True, kw_only=True)
class Revoke(_Scoped):
    """Record a subject's revocation (or refusal) of a purpose for a party."""

    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _reason(self.reason, required=False)


@dataclass(frozen=True, kw_only=True)
class Void(Command):
    """Mark an earlier grant, revocation or terms acceptance as entered in error.

    The stream is the voided event's subject's, found from the ledger's event index.
    """

    voided_event_id: UUID
    reason: str

    def __post_init__(self) -> None:
        _reason(self.reason, required=True)

    @property
    def stream_id(self) -> None:
        """Return None: the stream is the one holding `voided_event_id`."""
        return None


@dataclass(frozen=True, kw_only=True)
class Erase(SubjectCommand):
    """Forget a subject's personal data (its key is destroyed) and refuse later writes."""

    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _reason(self.reason, required=False)


@dataclass(frozen=True, kw_only=True)
class Expire(SubjectCommand):
    """Record that a grant reached its expiry (the expiry scheduler's write)."""

    grant_event_id: UUID


@dataclass(frozen=True, kw_only=True)
class RegisterContent(SubjectCommand):
    """Register a content in its owner's (`subject`'s) stream, with its contributors."""

    content_id: str
    contributors: Sequence[Mapping[str, Any]] = ()
    isrc: str | None = None
    iswc: str | None = None
    effective_at: datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_identifier(self.content_id, field="content")
        _set(self, "contributors", tuple(check_contributors(self.subject, self.contributors)))
        _set(self, "isrc", check_isrc(self.isrc) if self.isrc is not None else None)
        _set(self, "iswc", check_iswc(self.iswc) if self.iswc is not None else None)
        _set(self, "effective_at", _aware(self.effective_at, "effective_at"))


@dataclass(frozen=True, kw_only=True)
class GrantAuthority(SubjectCommand):
    """Let `agent` act for the subject, for `purposes` (None: all) until `expires_at`."""

    agent: str
    purposes: Sequence[str] | None = None
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_agent(self.agent)
        _set(self, "purposes", tuple(dict.fromkeys(self.purposes)) if self.purposes else None)
        _set(self, "expires_at", _aware(self.expires_at, "expires_at"))


@dataclass(frozen=True, kw_only=True)
class RevokeAuthority(SubjectCommand):
    """End `agent`'s authority for the subject (refused unless one is in force)."""

    agent: str

    def __post_init__(self) -> None:
        super().__post_init__()
        check_agent(self.agent)


def _actor(subject: str, actor: str | None) -> str | None:
    """Return the actor to record: None when the subject acts for itself (the default)."""
    if actor is None or actor == subject:
        return None
    return check_agent(actor)


@dataclass(frozen=True, kw_only=True)
class PublishSignals(SubjectCommand):
    """Record what a page's AI-usage signals now say (the signals publisher's write).

    `content` None is the subject's catalogue; `digests` the SHA-256 of each vocabulary
    output, `vocabularies` each table's version, `signals` the JSON served.
    """

    content: str | None
    digests: Mapping[str, str]
    vocabularies: Mapping[str, str]
    signals: Mapping[str, Any]


def check_expiry(expires_at: datetime, effective_at: datetime) -> None:
    """Refuse an expiry that is not after the grant's effective time."""
    if expires_at <= effective_at:
        raise InvalidExpiryError(
            f"expires_at {format_instant(expires_at)} is not after effective_at "
            f"{format_instant(effective_at)}"
        )


@dataclass(frozen=True, kw_only=True)
class RegisterDataset(Command):
    """Register a training dataset built from a verified consent snapshot (issue 10).

    `snapshot` holds the manifest's facts the event repeats (snapshot_id, purpose,
    party, aspect, at, known_at, position, tree_size, root_hash); the name is checked
    by `ledger.datasets.check_dataset_name`, the rest by the caller that verified it.
    """

    name: str
    snapshot: Mapping[str, Any]
    manifest_sha256: str
    model: str | None = None
    model_version: str | None = None
    items_sha256: str | None = None
    items_count: int | None = None

    def __post_init__(self) -> None:
        if not _SHA256.match(self.manifest_sha256):
            raise InvalidInputError("manifest_sha256 must be 64 lowercase hex characters")

    @property
    def stream_id(self) -> UUID:
        """Return the dataset's own stream."""
        return dataset_stream_id(self.name)
