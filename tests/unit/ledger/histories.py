"""Build subject histories for the pure rules, without a store: events in ledger order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ledger.decisions import Decision, Question, decide
from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)
from ledger.instants import parse_instant
from ledger.vocabulary import Vocabulary

SUBJECT = "artist-1"
VOCABULARY = Vocabulary()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    """Parse a test instant."""
    return parse_instant(text)


@dataclass
class History:
    """A subject's events in the order the ledger recorded them, one second apart."""

    entries: list[Entry] = field(default_factory=list)
    terms: dict[str, TermsPublished] = field(default_factory=dict)
    clock: datetime = T0
    head: int = 0  # the ledger position of the latest event, whatever tests remove later

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def _add(self, event: LedgerEvent) -> UUID:
        self.head += 1
        self.entries.append(Entry(self.head, event))
        return event.event_id

    def _base(self, effective: str | datetime | None) -> dict[str, Any]:
        now = self._tick()
        if isinstance(effective, str):
            effective = at(effective)
        return {
            "originator_id": subject_stream_id(SUBJECT),
            "originator_version": len(self.entries) + 1,
            "timestamp": now,
            "event_id": uuid4(),
            "effective_at": effective or now,
            "subject": SUBJECT,
        }

    def publish(self, version: str, effective_from: str, **defaults: str) -> None:
        """Publish terms with `purpose=default` clauses (underscores become hyphens)."""
        now = self._tick()
        self.head += 1
        self.terms[version] = TermsPublished(
            originator_id=terms_stream_id(version),
            originator_version=1,
            timestamp=now,
            event_id=uuid4(),
            effective_at=now,
            version=version,
            effective_from=at(effective_from),
            clauses=[{"purpose": p.replace("_", "-"), "default": d} for p, d in defaults.items()],
            document_sha256=None,
        )

    def accept(self, version: str, effective: str | datetime | None = None) -> UUID:
        """Record an acceptance of `version`."""
        return self._add(TermsAccepted(version=version, evidence=None, **self._base(effective)))

    def grant(
        self,
        purpose: str,
        *,
        party: str = "platform",
        content: list[str] | None = None,
        aspect: str = "all",
        effective: str | datetime | None = None,
        expires: str | None = None,
    ) -> UUID:
        """Record a grant."""
        return self._add(
            ConsentGranted(
                purpose=purpose,
                party=party,
                content_ids=content,
                aspect=aspect,
                expires_at=at(expires) if expires else None,
                evidence=None,
                **self._base(effective),
            )
        )

    def revoke(
        self,
        purpose: str,
        *,
        party: str = "platform",
        content: list[str] | None = None,
        aspect: str = "all",
        effective: str | datetime | None = None,
    ) -> UUID:
        """Record a revocation."""
        return self._add(
            ConsentRevoked(
                purpose=purpose,
                party=party,
                content_ids=content,
                aspect=aspect,
                reason=None,
                evidence=None,
                **self._base(effective),
            )
        )

    def void(self, event_id: UUID) -> UUID:
        """Record a void of `event_id`."""
        return self._add(EventVoided(voided_event_id=event_id, reason="error", **self._base(None)))

    def erase(self) -> UUID:
        """Record the subject's erasure."""
        return self._add(SubjectErased(reason=None, **self._base(None)))

    def ask(
        self,
        purpose: str,
        *,
        party: str = "platform",
        content: str | None = None,
        aspect: str = "all",
        when: str | datetime | None = None,
        known_at: datetime | None = None,
    ) -> Decision:
        """Decide a question against this history (defaults: at and known_at far ahead)."""
        if isinstance(when, str):
            when = at(when)
        question = Question(
            subject=SUBJECT,
            purpose=VOCABULARY.purpose(purpose),
            party=party,
            content=content,
            aspect=aspect,
            at=when or at("2100-01-01"),
            known_at=known_at or at("2100-01-01"),
        )
        return decide(self.entries, self.terms, question, ledger_position=self.head)
