"""Errors of the ledger core: one base class, translated once at each boundary.

Each error names the values a caller needs to act on it. The `kind` tells an entrypoint
how to present it (HTTP status, CLI exit code) without a table of classes per boundary.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Classify an error by what the caller did wrong, independent of transport."""

    INVALID = "invalid"  # malformed or out-of-vocabulary input (HTTP 422)
    NOT_FOUND = "not-found"  # unknown subject, event or terms version (HTTP 404)
    CONFLICT = "conflict"  # contradicts what the ledger already holds (HTTP 409)
    UNAVAILABLE = "unavailable"  # the store cannot be reached (HTTP 503)
    FORBIDDEN = "forbidden"  # an actor without authority for the subject (HTTP 403)


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose; carries a kind and a title."""

    kind: ErrorKind = ErrorKind.INVALID
    title: str = "Invalid input"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInputError(LedgerError):
    """Refuse input that is malformed or outside the vocabulary."""


class UnknownPurposeError(InvalidInputError):
    """Refuse a purpose that the vocabulary does not hold."""

    title = "Unknown purpose"

    def __init__(self, purpose: str, known: list[str]) -> None:
        super().__init__(f"unknown purpose {purpose!r}; known purposes: {', '.join(known)}")
        self.purpose = purpose


class UnknownAspectError(InvalidInputError):
    """Refuse an aspect other than music, voice, likeness or all."""

    title = "Unknown aspect"

    def __init__(self, aspect: str, known: list[str]) -> None:
        super().__init__(f"unknown aspect {aspect!r}; known aspects: {', '.join(known)}")
        self.aspect = aspect


class InvalidPartyError(InvalidInputError):
    """Refuse a party that is neither `platform`, `*` nor a well-formed third-party name."""

    title = "Invalid party"


class InvalidIdentifierError(InvalidInputError):
    """Refuse a subject or content id that is empty, too long or holds separators."""

    title = "Invalid identifier"


class InvalidInstantError(InvalidInputError):
    """Refuse a time that is malformed or has no zone."""

    title = "Invalid time"


class InvalidExpiryError(InvalidInputError):
    """Refuse a grant whose expiry is not after its effective time."""

    title = "Expiry not after effective time"


class OptInDefaultError(InvalidInputError):
    """Refuse terms that would default an opt-in purpose to granted."""

    title = "Opt-in purpose cannot default to granted"


class InvalidTermsError(InvalidInputError):
    """Refuse terms whose version, clauses or document hash are malformed."""

    title = "Invalid terms"


class EventNotVoidableError(InvalidInputError):
    """Refuse to void an event that is not a grant, revocation or terms acceptance."""

    title = "Event cannot be voided"


class NotFoundError(LedgerError):
    """Signal that the named subject, event or terms version does not exist."""

    kind = ErrorKind.NOT_FOUND
    title = "Not found"


class LedgerNotFoundError(NotFoundError):
    """Refuse to read a ledger that does not exist (a read must create nothing)."""

    title = "No such ledger"

    def __init__(self, where: str) -> None:
        super().__init__(f"no ledger at {where}; check LEDGER_DATABASE_URL or --database-url")
        self.where = where


class UnknownTermsVersionError(NotFoundError):
    """Refuse a terms version that was never published."""

    title = "Unknown terms version"

    def __init__(self, version: str) -> None:
        super().__init__(f"terms version {version!r} has not been published")
        self.version = version


class UnknownEventError(NotFoundError):
    """Refuse an event id that the ledger does not hold."""

    title = "Unknown event"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"no ledger event has id {event_id}")
        self.event_id = event_id


class AuthorityNotInForceError(NotFoundError):
    """Refuse to revoke an agent's authority that is not in force (BRIEF §2.1)."""

    title = "Authority not in force"


class NotAuthorisedError(LedgerError):
    """Refuse a write whose actor holds no authority in force for it (BRIEF §2.1)."""

    kind = ErrorKind.FORBIDDEN
    title = "Actor not authorised"


class ConflictError(LedgerError):
    """Refuse a write that contradicts what the ledger already holds."""

    kind = ErrorKind.CONFLICT
    title = "Conflict"


class TermsAlreadyPublishedError(ConflictError):
    """Refuse to publish a terms version a second time."""

    title = "Terms version already published"

    def __init__(self, version: str) -> None:
        super().__init__(f"terms version {version!r} is already published")
        self.version = version


class EventAlreadyVoidedError(ConflictError):
    """Refuse to void an event that is already voided."""

    title = "Event already voided"

    def __init__(self, event_id: str, voided_by: str) -> None:
        super().__init__(f"event {event_id} is already voided (by {voided_by})")
        self.event_id = event_id


class SubjectErasedError(ConflictError):
    """Refuse any write about a subject that has been erased."""

    title = "Subject erased"

    def __init__(self, subject: str) -> None:
        super().__init__(f"subject {subject!r} has been erased; no further writes are accepted")
        self.subject = subject


class NothingToExpireError(ConflictError):
    """Refuse an expiry that is not (or no longer) due: the expiry scheduler skips it."""

    title = "Nothing to expire"


class ConcurrentWriteError(ConflictError):
    """Signal that concurrent writers kept winning the race for one stream."""

    title = "Concurrent write"


class ContentOwnerConflictError(ConflictError):
    """Refuse to register a content for another owner than its first registration's."""

    title = "Content has another owner"


class StoreUnavailableError(LedgerError):
    """Signal that the event store cannot be reached; nothing was written."""

    kind = ErrorKind.UNAVAILABLE
    title = "Store unavailable"


class DatasetAlreadyRegisteredError(ConflictError):
    """A training dataset name that is registered already (datasets are registered once)."""

    title = "Dataset already registered"

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} is registered already; datasets are registered once")
