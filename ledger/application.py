# long module: every use case of the ledger behind one facade (the §2.1 writes are a mixin)
"""The ledger's use cases: record consent facts and answer questions by replay.

`ConsentLedger` is an `eventsourcing` application. A write is a command
(`ledger.commands`) handed to the write pipeline (`ledger.write_pipeline`), which loads
the stream it touches, asks the pure decider (`ledger.deciders`) for the event, and
saves it: load -> decide -> save. Reads here replay a subject's stream through the pure
rules of `ledger.decisions`; the read models in `projections` answer the same questions
faster and are checked against these answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from ledger import store
from ledger.commands import (
    AcceptTerms,
    Command,
    Erase,
    Expire,
    Grant,
    PublishTerms,
    Revoke,
    Void,
)
from ledger.crypto import SubjectKeyStore, open_evidence
from ledger.decisions import Decision, Question, decide
from ledger.errors import ConflictError, LedgerError
from ledger.events import (
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectErased,
    TermsPublished,
    subject_stream_id,
)
from ledger.instants import require_aware
from ledger.known_positions import position_known_at
from ledger.rights_writes import ContentIndex, RightsWrites
from ledger.store import store_errors_translated
from ledger.terms_catalog import TermsCatalog
from ledger.vocabulary import (
    ALL_ASPECTS,
    PLATFORM,
    Vocabulary,
    check_aspect,
    check_identifier,
    check_model,
    check_party,
)
from ledger.write_pipeline import Receipt, WritePipeline

__all__ = ["Clock", "ConsentLedger", "HistoryItem", "Receipt", "SystemClock"]


class Clock(Protocol):
    """Tell the ledger's time; the only source of `recorded_at`."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware."""
        ...


class SystemClock:
    """Read the system clock in UTC."""

    def now(self) -> datetime:
        """Return the current UTC instant."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class HistoryItem:
    """One event of a subject's history, as known at some instant, evidence opened."""

    entry: Entry
    voided_by: UUID | None
    evidence: dict[str, Any] | None


class ConsentLedger(RightsWrites, Application[UUID]):
    """Record consent facts as immutable events and answer questions by replay."""

    name = "ConsentLedger"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        keys: SubjectKeyStore,
        vocabulary: Vocabulary | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(env=dict(env or {}))
        self.keys = keys
        self.vocabulary = vocabulary or Vocabulary()
        self.clock: Clock = clock or SystemClock()
        self._terms = TermsCatalog(self)
        self.pipeline = WritePipeline(
            self,
            keys=keys,
            vocabulary=self.vocabulary,
            terms=self._terms,
            clock=lambda: self.clock.now(),
        )
        self._content_index = ContentIndex()

    def create_tables(self) -> None:
        """Create the event store's tables and the event index (callers serialise it)."""
        self.recorder.create_table()  # type: ignore[attr-defined]
        store.create_index_table(self.recorder)

    # ----------------------------------------------------------------- writes

    def execute(self, command: Command) -> Receipt:
        """Record one command's event (load -> decide -> save); raise its refusal."""
        return self.pipeline.execute(command)

    def execute_many(self, commands: Sequence[Command]) -> list[Receipt | LedgerError]:
        """Record many commands in one transaction (group commit): a receipt or refusal each."""
        return self.pipeline.execute_many(commands)

    def publish_terms(
        self,
        version: str,
        effective_from: datetime,
        clauses: Sequence[Mapping[str, str]],
        document_sha256: str | None = None,
    ) -> Receipt:
        """Publish a terms version; refuse a repeat or a granted default for opt-in."""
        command = PublishTerms(
            version=version,
            effective_from=effective_from,
            clauses=clauses,
            document_sha256=document_sha256,
        )
        return self.execute(command)

    def accept_terms(
        self,
        subject: str,
        version: str,
        *,
        effective_at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Receipt:
        """Record that a subject accepted a published terms version."""
        command = AcceptTerms(
            subject=subject,
            version=version,
            effective_at=effective_at,
            evidence=evidence,
            actor=actor,
        )
        return self.execute(command)

    def grant(
        self,
        subject: str,
        purpose: str,
        *,
        party: str = PLATFORM,
        content_ids: Sequence[str] | None = None,
        aspect: str = ALL_ASPECTS,
        effective_at: datetime | None = None,
        expires_at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
        model: str | None = None,
        conditions: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> Receipt:
        """Record a subject's grant of a purpose to a party, for a scope and aspect."""
        command = Grant(
            subject=subject,
            purpose=purpose,
            party=party,
            content_ids=content_ids,
            aspect=aspect,
            effective_at=effective_at,
            expires_at=expires_at,
            evidence=evidence,
            model=model,
            conditions=conditions,
            actor=actor,
        )
        return self.execute(command)

    def revoke(
        self,
        subject: str,
        purpose: str,
        *,
        party: str = PLATFORM,
        content_ids: Sequence[str] | None = None,
        aspect: str = ALL_ASPECTS,
        effective_at: datetime | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> Receipt:
        """Record a subject's revocation (or refusal) of a purpose for a party."""
        command = Revoke(
            subject=subject,
            purpose=purpose,
            party=party,
            content_ids=content_ids,
            aspect=aspect,
            effective_at=effective_at,
            reason=reason,
            evidence=evidence,
            model=model,
            actor=actor,
        )
        return self.execute(command)

    def void(self, event_id: UUID, reason: str) -> Receipt:
        """Mark an earlier grant, revocation or acceptance as entered in error."""
        return self.execute(Void(voided_event_id=event_id, reason=reason))

    def erase(self, subject: str, reason: str | None = None) -> Receipt:
        """Forget a subject's personal data: destroy its key and record the erasure."""
        return self.execute(Erase(subject=subject, reason=reason))

    def record_expiry(self, subject: str, grant_event_id: UUID) -> Receipt | None:
        """Append `ConsentExpired` for a grant whose expiry has passed, once.

        Returns None when there is nothing to record: the grant is unknown, voided,
        already marked expired, not yet expired, or the subject is erased.
        """
        try:
            return self.execute(Expire(subject=subject, grant_event_id=grant_event_id))
        except ConflictError:
            return None

    # ----------------------------------------------------------------- reads

    def _load(self, stream_id: UUID) -> list[LedgerEvent]:
        return [e for e in self.events.get(stream_id) if isinstance(e, LedgerEvent)]

    @store_errors_translated
    def terms(self, version: str) -> TermsPublished | None:
        """Return the publication of a terms version, or None if it was never published."""
        return self._terms.get(version)

    @store_errors_translated
    def terms_catalog(self) -> dict[str, TermsPublished]:
        """Return every published terms version, by version."""
        return self._terms.all()

    @store_errors_translated
    def subject_entries(self, subject: str) -> list[Entry]:
        """Return a subject's events with their ledger positions, in ledger order."""
        stream_id = subject_stream_id(subject)
        events = self._load(stream_id)
        positions = store.stream_positions(self.recorder, stream_id) if events else {}
        return [Entry(positions[e.originator_version], e) for e in events]

    @store_errors_translated
    def ledger_position(self, known_at: datetime | None = None) -> int:
        """Return the highest ledger position recorded by `known_at` (0 for an empty ledger).

        With `known_at` None, the latest position (see `ledger.known_positions`).
        """
        return position_known_at(self, known_at)

    def check(
        self,
        subject: str,
        purpose: str,
        *,
        party: str = PLATFORM,
        content: str | None = None,
        aspect: str = ALL_ASPECTS,
        at: datetime | None = None,
        known_at: datetime | None = None,
        model: str | None = None,
    ) -> Decision:
        """Answer whether `party` may use `subject`'s content for `purpose` (by replay)."""
        question = self.question(
            subject, purpose, party, content, aspect, at, known_at, model=model
        )
        position = self.ledger_position(known_at and question.known_at)
        return decide(
            self.subject_entries(subject),
            self.terms_catalog(),
            question,
            position,
            self.subject_entries,
        )

    def question(
        self,
        subject: str,
        purpose: str,
        party: str = PLATFORM,
        content: str | None = None,
        aspect: str = ALL_ASPECTS,
        at: datetime | None = None,
        known_at: datetime | None = None,
        *,
        model: str | None = None,
    ) -> Question:
        """Validate a question's words and fill `at`/`known_at` with now where absent."""
        check_identifier(subject, field="subject")
        if content is not None:
            check_identifier(content, field="content")
        now = self.clock.now()
        return Question(
            subject=subject,
            purpose=self.vocabulary.purpose(purpose),
            party=check_party(party),
            content=content,
            aspect=check_aspect(aspect),
            at=require_aware(at, field="at") if at else now,
            known_at=require_aware(known_at, field="known_at") if known_at else now,
            model=check_model(model) if model is not None else None,
        )

    def history(
        self,
        subject: str,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[HistoryItem]:
        """Return a subject's events recorded by `known_at` and effective by `at`.

        Voids and erasure show whatever their effective time; each voided event names
        the void. Evidence is opened where the subject's key still exists.
        """
        check_identifier(subject, field="subject")
        entries = self.subject_entries(subject)
        if known_at is not None:
            known_at = require_aware(known_at, field="known_at")
            entries = [e for e in entries if e.event.recorded_at <= known_at]
        voided_by = {
            e.event.voided_event_id: e.event.event_id
            for e in entries
            if isinstance(e.event, EventVoided)
        }
        if at is not None:
            at = require_aware(at, field="at")
            entries = [
                e
                for e in entries
                if e.event.effective_at <= at or isinstance(e.event, EventVoided | SubjectErased)
            ]
        return [
            HistoryItem(
                entry=e,
                voided_by=voided_by.get(e.event.event_id),
                evidence=open_evidence(
                    getattr(e.event, "evidence", None),
                    subject=subject,
                    event_id=e.event.event_id,
                    keys=self.keys,
                ),
            )
            for e in entries
        ]

    @store_errors_translated
    def entries_after(self, position: int, limit: int = 1000) -> list[Entry]:
        """Return up to `limit` ledger entries after `position`, in ledger order."""
        notifications = self.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        return [self.entry(n) for n in notifications]

    def iter_entries(self, after: int = 0, batch: int = 1000) -> Iterator[Entry]:
        """Yield every ledger entry after `after`, in ledger order, in batches."""
        while True:
            entries = self.entries_after(after, batch)
            if not entries:
                return
            yield from entries
            after = entries[-1].position

    def entry(self, notification: Notification) -> Entry:
        """Return the ledger entry a notification holds."""
        event = self.mapper.to_domain_event(notification)
        assert isinstance(event, LedgerEvent)
        return Entry(notification.id, event)

    @store_errors_translated
    def find_event(self, event_id: UUID) -> Entry | None:
        """Return the ledger entry with `event_id`, or None (looked up in the event index)."""
        located = self.pipeline.locate(event_id)
        if located is None:
            return None
        batch = self.recorder.select_notifications(start=located[0], limit=1, stop=located[0])
        return self.entry(batch[0]) if batch else None
