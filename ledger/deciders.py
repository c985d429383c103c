"""Pure deciders: (the stream's state, a command, now) -> the new event, or a refusal.

No I/O and no clock reads: the write pipeline loads the state, reads the ledger clock
once (under the writers' lock) and saves what a decider returns. A decider raises a
LedgerError to refuse; then nothing is written. Evidence stays as the caller gave it:
the pipeline seals its personal fields once the decision is made.

Adding a write: a command class in `ledger.commands`, a decider here, and one line in
`DECIDERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from ledger.commands import (
    AcceptTerms,
    Command,
    Erase,
    Expire,
    Grant,
    GrantAuthority,
    PublishSignals,
    PublishTerms,
    RegisterContent,
    RegisterDataset,
    Revoke,
    RevokeAuthority,
    SubjectCommand,
    Void,
    check_expiry,
)
from ledger.errors import (
    DatasetAlreadyRegisteredError,
    EventAlreadyVoidedError,
    EventNotVoidableError,
    NothingToExpireError,
    OptInDefaultError,
    SubjectErasedError,
    TermsAlreadyPublishedError,
    UnknownEventError,
    UnknownTermsVersionError,
)
from ledger.events import (
    VOIDABLE,
    AuthorityGranted,
    AuthorityRevoked,
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    DatasetRegistered,
    EventVoided,
    LedgerEvent,
    SignalsPublished,
    SubjectErased,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
)
from ledger.rights import require_authority, require_authority_in_force
from ledger.vocabulary import ConsentModel, Vocabulary


@dataclass
class StreamState:
    """One stream as loaded for a write: its events and the next version to append."""

    stream_id: UUID
    events: list[LedgerEvent] = field(default_factory=list)

    @property
    def next_version(self) -> int:
        """Return the version the next event of this stream must carry."""
        return self.events[-1].originator_version + 1 if self.events else 1

    @property
    def erased(self) -> bool:
        """Tell whether the subject of this stream has been erased."""
        return any(isinstance(e, SubjectErased) for e in self.events)


@dataclass(frozen=True)
class WriteState:
    """Everything a decider may read: the stream appended to, the vocabulary, the terms.

    `terms` is the publication of the version an AcceptTerms names (None if unpublished).
    """

    stream: StreamState
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    terms: TermsPublished | None = None


Decider = Callable[[WriteState, Any, datetime], LedgerEvent]


def decide(state: WriteState, command: Command, now: datetime) -> LedgerEvent:
    """Return the event `command` records on `state` at ledger time `now`, or refuse.

    Requires `now` aware and not before the stream's last `recorded_at`. Raises the
    LedgerError that names the refusal (BRIEF §2, "Refused, with nothing written").
    """
    decider = DECIDERS[type(command)]
    return decider(state, command, now)


def _head(state: WriteState, command: Command, now: datetime) -> dict[str, Any]:
    """Return the fields every event takes from its stream, command and ledger time."""
    return {
        "originator_id": state.stream.stream_id,
        "originator_version": state.stream.next_version,
        "timestamp": now,
        "event_id": command.event_id,
    }


def _subject_head(state: WriteState, command: SubjectCommand, now: datetime) -> dict[str, Any]:
    """Refuse a write about an erased subject; return the common fields of its event."""
    if state.stream.erased:
        raise SubjectErasedError(command.subject)
    return {**_head(state, command, now), "subject": command.subject}


def _plain(evidence: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if evidence is None else dict(evidence)


def _contents(content_ids: Sequence[str] | None) -> list[str] | None:
    return None if content_ids is None else list(content_ids)


def decide_publish_terms(state: WriteState, command: PublishTerms, now: datetime) -> LedgerEvent:
    """Publish a version once; refuse unknown purposes and a granted opt-in default."""
    clauses: list[dict[str, str]] = []
    for clause in command.clauses:
        purpose = state.vocabulary.purpose(str(clause["purpose"]))
        if purpose.model is ConsentModel.OPT_IN and clause["default"] == "granted":
            raise OptInDefaultError(
                f"purpose {purpose.name!r} is opt-in only: terms cannot default it to granted"
            )
        clauses.append({"purpose": purpose.name, "default": clause["default"]})
    if state.stream.events:
        raise TermsAlreadyPublishedError(command.version)
    return TermsPublished(
        **_head(state, command, now),
        effective_at=now,
        version=command.version,
        effective_from=command.effective_from,
        clauses=clauses,
        document_sha256=command.document_sha256,
    )


def decide_accept_terms(state: WriteState, command: AcceptTerms, now: datetime) -> LedgerEvent:
    """Accept a published version; refuse an unpublished one or an erased subject."""
    if state.terms is None or state.terms.version != command.version:
        raise UnknownTermsVersionError(command.version)
    head = _subject_head(state, command, now)
    require_authority(state.stream.events, command.subject, command.actor, None, now)
    return TermsAccepted(
        **head,
        effective_at=command.effective_at or now,
        version=command.version,
        evidence=_plain(command.evidence),
        actor=command.actor,
    )


def decide_grant(state: WriteState, command: Grant, now: datetime) -> LedgerEvent:
    """Grant a known purpose; refuse an expiry not after the effective time."""
    purpose = state.vocabulary.purpose(command.purpose).name
    effective_at = command.effective_at or now
    if command.expires_at is not None:
        check_expiry(command.expires_at, effective_at)
    head = _subject_head(state, command, now)
    require_authority(state.stream.events, command.subject, command.actor, purpose, now)
    return ConsentGranted(
        **head,
        effective_at=effective_at,
        purpose=purpose,
        party=command.party,
        content_ids=_contents(command.content_ids),
        aspect=command.aspect,
        expires_at=command.expires_at,
        evidence=_plain(command.evidence),
        actor=command.actor,
        model=command.model,
        conditions=list(command.conditions) if command.conditions else None,
    )


def decide_revoke(state: WriteState, command: Revoke, now: datetime) -> LedgerEvent:
    """Revoke a known purpose for a party, scope and aspect."""
    purpose = state.vocabulary.purpose(command.purpose).name
    head = _subject_head(state, command, now)
    require_authority(state.stream.events, command.subject, command.actor, purpose, now)
    return ConsentRevoked(
        **head,
        effective_at=command.effective_at or now,
        purpose=purpose,
        party=command.party,
        content_ids=_contents(command.content_ids),
        aspect=command.aspect,
        reason=command.reason,
        evidence=_plain(command.evidence),
        actor=command.actor,
        model=command.model,
    )


def decide_void(state: WriteState, command: Void, now: datetime) -> LedgerEvent:
    """Void a live grant, revocation or acceptance of the stream; refuse anything else."""
    target = next((e for e in state.stream.events if e.event_id == command.voided_event_id), None)
    if target is None:
        raise UnknownEventError(str(command.voided_event_id))
    if not isinstance(target, VOIDABLE):
        raise EventNotVoidableError(
            f"event {command.voided_event_id} is a {type(target).type_name}; only grants, "
            "revocations and terms acceptances (and content registrations) can be voided"
        )
    for earlier in state.stream.events:
        if isinstance(earlier, EventVoided) and earlier.voided_event_id == target.event_id:
            raise EventAlreadyVoidedError(str(target.event_id), str(earlier.event_id))
    assert isinstance(target, SubjectEvent)
    if state.stream.erased:
        raise SubjectErasedError(target.subject)
    return EventVoided(
        **_head(state, command, now),
        subject=target.subject,
        effective_at=now,
        voided_event_id=target.event_id,
        reason=command.reason,
    )


def decide_register_content(
    state: WriteState, command: RegisterContent, now: datetime
) -> LedgerEvent:
    """Register a content in its owner's stream (the owner check reads the ledger's
    content index before the command is decided: see `ConsentLedger.register_content`)."""
    return ContentRegistered(
        **_subject_head(state, command, now),
        effective_at=command.effective_at or now,
        content_id=command.content_id,
        contributors=[dict(c) for c in command.contributors],
        isrc=command.isrc,
        iswc=command.iswc,
    )


def decide_grant_authority(
    state: WriteState, command: GrantAuthority, now: datetime
) -> LedgerEvent:
    """Let an agent act for the subject; refuse unknown purposes or a past expiry."""
    purposes = (
        [state.vocabulary.purpose(p).name for p in command.purposes] if command.purposes else None
    )
    if command.expires_at is not None:
        check_expiry(command.expires_at, now)
    return AuthorityGranted(
        **_subject_head(state, command, now),
        effective_at=now,
        agent=command.agent,
        purposes=purposes,
        expires_at=command.expires_at,
    )


def decide_revoke_authority(
    state: WriteState, command: RevokeAuthority, now: datetime
) -> LedgerEvent:
    """End an agent's authority; refuse (404) one that is not in force."""
    head = _subject_head(state, command, now)
    require_authority_in_force(state.stream.events, command.subject, command.agent, now)
    return AuthorityRevoked(**head, effective_at=now, agent=command.agent)


def decide_erase(state: WriteState, command: Erase, now: datetime) -> LedgerEvent:
    """Record the erasure once; a second erasure is refused like any later write."""
    return SubjectErased(
        **_subject_head(state, command, now), effective_at=now, reason=command.reason
    )


def decide_expire(state: WriteState, command: Expire, now: datetime) -> LedgerEvent:
    """Record a live grant's expiry once, when it has passed; effective at the expiry."""
    grant_id = command.grant_event_id
    grant = next(
        (
            e
            for e in state.stream.events
            if isinstance(e, ConsentGranted) and e.event_id == grant_id
        ),
        None,
    )
    if grant is None or grant.expires_at is None:
        raise NothingToExpireError(f"subject has no grant {grant_id} with an expiry")
    if grant.expires_at > now:
        raise NothingToExpireError(f"grant {grant_id} has not expired yet")
    for e in state.stream.events:
        if isinstance(e, ConsentExpired) and e.grant_event_id == grant_id:
            raise NothingToExpireError(f"grant {grant_id} is already marked expired")
        if isinstance(e, EventVoided) and e.voided_event_id == grant_id:
            raise NothingToExpireError(f"grant {grant_id} is voided")
    return ConsentExpired(
        **_subject_head(state, command, now),
        effective_at=grant.expires_at,
        grant_event_id=grant_id,
        purpose=grant.purpose,
        party=grant.party,
        content_ids=grant.content_ids,
        aspect=grant.aspect,
    )


def decide_register_dataset(
    state: WriteState, command: RegisterDataset, now: datetime
) -> LedgerEvent:
    """Register a dataset name once (DatasetAlreadyRegisteredError for a second time)."""
    if state.stream.events:
        raise DatasetAlreadyRegisteredError(command.name)
    facts = command.snapshot
    return DatasetRegistered(
        **_head(state, command, now),
        effective_at=now,
        name=command.name,
        snapshot_id=str(facts["snapshot_id"]),
        manifest_sha256=command.manifest_sha256,
        purpose=str(facts["purpose"]),
        party=str(facts["party"]),
        aspect=str(facts["aspect"]),
        snapshot_at=facts["at"],
        snapshot_known_at=facts["known_at"],
        snapshot_position=int(facts["position"]),
        tree_size=int(facts["tree_size"]),
        root_hash=str(facts["root_hash"]),
        model=command.model,
        model_version=command.model_version,
        items_sha256=command.items_sha256,
        items_count=command.items_count,
    )


def decide_publish_signals(
    state: WriteState, command: PublishSignals, now: datetime
) -> LedgerEvent:
    """Record a page's signals; an erased subject's are recorded too (all denied): they
    are the platform's statement, not the subject's personal data."""
    return SignalsPublished(
        **_head(state, command, now),
        effective_at=now,
        subject=command.subject,
        content=command.content,
        digests=dict(command.digests),
        vocabularies=dict(command.vocabularies),
        signals=dict(command.signals),
    )


DECIDERS: Final[dict[type[Command], Decider]] = {
    PublishTerms: decide_publish_terms,
    AcceptTerms: decide_accept_terms,
    Grant: decide_grant,
    Revoke: decide_revoke,
    Void: decide_void,
    Erase: decide_erase,
    Expire: decide_expire,
    RegisterContent: decide_register_content,
    GrantAuthority: decide_grant_authority,
    RevokeAuthority: decide_revoke_authority,
    RegisterDataset: decide_register_dataset,
    PublishSignals: decide_publish_signals,
}
