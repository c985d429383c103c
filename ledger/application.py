"""The ledger's use cases: record consent facts and answer questions by replay.

`ConsentLedger` is an `eventsourcing` application. Each write validates its input, loads
the one stream it touches, builds one event and appends it with optimistic concurrency
(a unique (stream, version) pair), retrying on a lost race. Reads here replay a subject's
stream through the pure rules of `ledger.decisions`; the read models in `projections`
answer the same questions faster and are checked against these answers.
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
)
from eventsourcing.utils import get_topic

from ledger import store
from ledger.crypto import SubjectKeyStore, open_evidence, seal_evidence
from ledger.decisions import Decision, Question, decide
from ledger.errors import (
    ConcurrentWriteError,
    ConflictError,
    EventAlreadyVoidedError,
    EventNotVoidableError,
    InvalidExpiryError,
    InvalidInputError,
    InvalidTermsError,
    LedgerError,
    OptInDefaultError,
    StoreUnavailableError,
    SubjectErasedError,
    TermsAlreadyPublishedError,
    UnknownEventError,
    UnknownTermsVersionError,
)
from ledger.events import (
    VOIDABLE,
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    LedgerEvent,
    SubjectErased,
    SubjectEvent,
    TermsAccepted,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)
from ledger.instants import format_instant, require_aware
from ledger.vocabulary import (
    ALL_ASPECTS,
    PLATFORM,
    ConsentModel,
    Vocabulary,
    check_aspect,
    check_identifier,
    check_party,
)

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_WRITE_ATTEMPTS = 40
MAX_RETRY_PAUSE_S = 0.05
MAX_REASON_CHARS = 2000
STREAM_CACHE_SIZE = 10_000


_Result = TypeVar("_Result")


def _store_errors_translated(method: Callable[..., _Result]) -> Callable[..., _Result]:
    """Turn the event store's driver errors into StoreUnavailableError at this boundary."""

    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> _Result:
        try:
            return method(*args, **kwargs)
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"the event store is unavailable: {error}") from None

    return translated


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
class Receipt:
    """What a write answers: the new event's id, ledger position and ledger time."""

    event_id: UUID
    position: int
    recorded_at: datetime

    def to_json(self) -> dict[str, object]:
        """Return `{event_id, position, recorded_at}` as the CLI and HTTP API print it."""
        return {
            "event_id": str(self.event_id),
            "position": self.position,
            "recorded_at": format_instant(self.recorded_at),
        }


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


class StreamCache:
    """Remember the latest states of recently written streams (least recently used out).

    Writers get private copies, so a failed append never changes what is remembered.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[UUID, StreamState] = OrderedDict()
        self._lock = threading.Lock()

    def copies(self, stream_ids: Iterable[UUID]) -> dict[UUID, StreamState]:
        """Return copies of the remembered states among `stream_ids`."""
        found: dict[UUID, StreamState] = {}
        with self._lock:
            for stream_id in stream_ids:
                state = self._states.get(stream_id)
                if state is not None:
                    self._states.move_to_end(stream_id)
                    found[stream_id] = StreamState(stream_id, list(state.events))
        return found

    def keep(self, states: Iterable[StreamState]) -> None:
        """Remember `states` as the streams' latest (they were just appended)."""
        with self._lock:
            for state in states:
                self._states[state.stream_id] = state
                self._states.move_to_end(state.stream_id)
            while len(self._states) > self.size:
                self._states.popitem(last=False)

    def forget(self, stream_ids: Iterable[UUID]) -> None:
        """Drop the remembered states of `stream_ids`."""
        with self._lock:
            for stream_id in list(stream_ids):
                self._states.pop(stream_id, None)


@dataclass(frozen=True)
class PendingWrite:
    """A validated command waiting for its stream: `build` makes the event from the state.

    Input that needs no ledger state has been checked already; `build` checks the rest
    (erasure, voids) and may raise a LedgerError.
    """

    stream_id: UUID
    build: Callable[[StreamState], LedgerEvent]
    before_commit: Callable[[], None] | None = None


@dataclass(frozen=True)
class HistoryItem:
    """One event of a subject's history, as known at some instant, evidence opened."""

    entry: Entry
    voided_by: UUID | None
    evidence: dict[str, Any] | None


class ConsentLedger(Application[UUID]):
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
        self._terms: dict[str, TermsPublished] = {}
        self._terms_seen_up_to = 0
        self._stream_cache = StreamCache(STREAM_CACHE_SIZE)

    # ----------------------------------------------------------------- writes

    def publish_terms(
        self,
        version: str,
        effective_from: datetime,
        clauses: Sequence[Mapping[str, str]],
        document_sha256: str | None = None,
    ) -> Receipt:
        """Publish a terms version; refuse a repeat or a granted default for opt-in."""
        return self.execute(self.prepare_terms(version, effective_from, clauses, document_sha256))

    def prepare_terms(
        self,
        version: str,
        effective_from: datetime,
        clauses: Sequence[Mapping[str, str]],
        document_sha256: str | None = None,
    ) -> PendingWrite:
        """Validate a terms publication and return it ready to append."""
        if not _VERSION.match(version):
            raise InvalidTermsError(
                f"terms version {version!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}"
            )
        effective_from = require_aware(effective_from, field="effective_from")
        if document_sha256 is not None and not _SHA256.match(document_sha256):
            raise InvalidTermsError("document_sha256 must be 64 lowercase hex characters")
        seen: set[str] = set()
        normalised: list[dict[str, str]] = []
        for clause in clauses:
            purpose = self.vocabulary.purpose(str(clause.get("purpose")))
            default = clause.get("default")
            if default not in ("granted", "denied"):
                raise InvalidTermsError(
                    f"clause for {purpose.name!r}: default must be 'granted' or 'denied', "
                    f"got {default!r}"
                )
            if purpose.name in seen:
                raise InvalidTermsError(f"clause for {purpose.name!r} appears twice")
            if purpose.model is ConsentModel.OPT_IN and default == "granted":
                raise OptInDefaultError(
                    f"purpose {purpose.name!r} is opt-in only: terms cannot default it to granted"
                )
            seen.add(purpose.name)
            normalised.append({"purpose": purpose.name, "default": default})
        event_id = uuid4()

        def build(state: StreamState) -> LedgerEvent:
            if state.events:
                raise TermsAlreadyPublishedError(version)
            now = self.clock.now()
            return TermsPublished(
                originator_id=state.stream_id,
                originator_version=state.next_version,
                timestamp=now,
                event_id=event_id,
                effective_at=now,
                version=version,
                effective_from=effective_from,
                clauses=normalised,
                document_sha256=document_sha256,
            )

        return PendingWrite(terms_stream_id(version), build)

    def accept_terms(
        self,
        subject: str,
        version: str,
        *,
        effective_at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Receipt:
        """Record that a subject accepted a published terms version."""
        return self.execute(self.prepare_acceptance(subject, version, effective_at, evidence))

    def prepare_acceptance(
        self,
        subject: str,
        version: str,
        effective_at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> PendingWrite:
        """Validate a terms acceptance and return it ready to append."""
        check_identifier(subject, field="subject")
        if self.terms(version) is None:
            raise UnknownTermsVersionError(version)

        def make(base: dict[str, Any], sealed: dict[str, Any] | None) -> LedgerEvent:
            return TermsAccepted(version=version, evidence=sealed, **base)

        return self._subject_write(subject, effective_at, evidence, make)

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
    ) -> Receipt:
        """Record a subject's grant of a purpose to a party, for a scope and aspect."""
        return self.execute(
            self.prepare_grant(
                subject, purpose, party, content_ids, aspect, effective_at, expires_at, evidence
            )
        )

    def prepare_grant(
        self,
        subject: str,
        purpose: str,
        party: str = PLATFORM,
        content_ids: Sequence[str] | None = None,
        aspect: str = ALL_ASPECTS,
        effective_at: datetime | None = None,
        expires_at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> PendingWrite:
        """Validate a grant and return it ready to append."""
        check_identifier(subject, field="subject")
        name = self.vocabulary.purpose(purpose).name
        check_party(party)
        check_aspect(aspect)
        contents = _content_ids(content_ids)
        if expires_at is not None:
            expires_at = require_aware(expires_at, field="expires_at")
            start = (
                require_aware(effective_at, field="effective_at")
                if effective_at
                else self.clock.now()
            )
            if expires_at <= start:
                raise InvalidExpiryError(
                    f"expires_at {format_instant(expires_at)} is not after effective_at "
                    f"{format_instant(start)}"
                )

        def make(base: dict[str, Any], sealed: dict[str, Any] | None) -> LedgerEvent:
            if expires_at is not None and expires_at <= base["effective_at"]:
                raise InvalidExpiryError(
                    f"expires_at {format_instant(expires_at)} is not after effective_at "
                    f"{format_instant(base['effective_at'])}"
                )
            return ConsentGranted(
                purpose=name,
                party=party,
                content_ids=contents,
                aspect=aspect,
                expires_at=expires_at,
                evidence=sealed,
                **base,
            )

        return self._subject_write(subject, effective_at, evidence, make)

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
    ) -> Receipt:
        """Record a subject's revocation (or refusal) of a purpose for a party."""
        return self.execute(
            self.prepare_revocation(
                subject, purpose, party, content_ids, aspect, effective_at, reason, evidence
            )
        )

    def prepare_revocation(
        self,
        subject: str,
        purpose: str,
        party: str = PLATFORM,
        content_ids: Sequence[str] | None = None,
        aspect: str = ALL_ASPECTS,
        effective_at: datetime | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> PendingWrite:
        """Validate a revocation and return it ready to append."""
        check_identifier(subject, field="subject")
        name = self.vocabulary.purpose(purpose).name
        check_party(party)
        check_aspect(aspect)
        contents = _content_ids(content_ids)
        _check_reason(reason, required=False)

        def make(base: dict[str, Any], sealed: dict[str, Any] | None) -> LedgerEvent:
            return ConsentRevoked(
                purpose=name,
                party=party,
                content_ids=contents,
                aspect=aspect,
                reason=reason,
                evidence=sealed,
                **base,
            )

        return self._subject_write(subject, effective_at, evidence, make)

    def void(self, event_id: UUID, reason: str) -> Receipt:
        """Mark an earlier grant, revocation or acceptance as entered in error."""
        return self.execute(self.prepare_void(event_id, reason))

    def prepare_void(self, event_id: UUID, reason: str) -> PendingWrite:
        """Validate a void and return it ready to append."""
        _check_reason(reason, required=True)
        target = self.find_event(event_id)
        if target is None:
            raise UnknownEventError(str(event_id))
        if not isinstance(target.event, VOIDABLE):
            raise EventNotVoidableError(
                f"event {event_id} is a {type(target.event).type_name}; only grants, "
                "revocations and terms acceptances can be voided"
            )
        assert isinstance(target.event, SubjectEvent)
        subject = target.event.subject

        def make(base: dict[str, Any], _: dict[str, Any] | None) -> LedgerEvent:
            return EventVoided(voided_event_id=event_id, reason=reason, **base)

        def build_checked(state: StreamState) -> LedgerEvent:
            for earlier in state.events:
                if isinstance(earlier, EventVoided) and earlier.voided_event_id == event_id:
                    raise EventAlreadyVoidedError(str(event_id), str(earlier.event_id))
            return pending.build(state)

        pending = self._subject_write(subject, None, None, make)
        return PendingWrite(pending.stream_id, build_checked)

    def erase(self, subject: str, reason: str | None = None) -> Receipt:
        """Forget a subject's personal data: destroy its key and record the erasure."""
        return self.execute(self.prepare_erasure(subject, reason))

    def prepare_erasure(self, subject: str, reason: str | None = None) -> PendingWrite:
        """Validate an erasure and return it ready to append.

        The key is destroyed before the event is appended: if the append then fails,
        the personal data is already unreadable and a repeated erasure completes it.
        """
        check_identifier(subject, field="subject")
        _check_reason(reason, required=False)

        def make(base: dict[str, Any], _: dict[str, Any] | None) -> LedgerEvent:
            return SubjectErased(reason=reason, **base)

        pending = self._subject_write(subject, None, None, make)
        return PendingWrite(pending.stream_id, pending.build, lambda: self.keys.destroy(subject))

    @_store_errors_translated
    def record_expiry(self, subject: str, grant_event_id: UUID) -> Receipt | None:
        """Append `ConsentExpired` for a grant whose expiry has passed, once.

        Returns None when there is nothing to record: the grant is unknown, voided,
        already marked expired, not yet expired, or the subject is erased.
        """
        state = self._load(subject_stream_id(subject))
        grant = next(
            (
                e
                for e in state.events
                if isinstance(e, ConsentGranted) and e.event_id == grant_event_id
            ),
            None,
        )
        if grant is None or grant.expires_at is None or state.erased:
            return None
        if grant.expires_at > self.clock.now():
            return None
        for e in state.events:
            if isinstance(e, ConsentExpired) and e.grant_event_id == grant_event_id:
                return None
            if isinstance(e, EventVoided) and e.voided_event_id == grant_event_id:
                return None
        expires_at = grant.expires_at

        def build(state: StreamState) -> LedgerEvent:
            if state.erased:
                raise SubjectErasedError(subject)
            for earlier in state.events:  # checked again on the state being appended to
                if isinstance(earlier, ConsentExpired) and earlier.grant_event_id == grant_event_id:
                    raise ConflictError(f"grant {grant_event_id} is already marked expired")
            return ConsentExpired(
                originator_id=state.stream_id,
                originator_version=state.next_version,
                timestamp=self.clock.now(),
                event_id=uuid4(),
                effective_at=expires_at,
                subject=subject,
                grant_event_id=grant_event_id,
                purpose=grant.purpose,
                party=grant.party,
                content_ids=grant.content_ids,
                aspect=grant.aspect,
            )

        try:
            return self.execute(PendingWrite(state.stream_id, build))
        except ConflictError:
            return None  # another scheduler recorded it, or the subject was erased meanwhile

    def _subject_write(
        self,
        subject: str,
        effective_at: datetime | None,
        evidence: Mapping[str, Any] | None,
        make: Callable[[dict[str, Any], dict[str, Any] | None], LedgerEvent],
    ) -> PendingWrite:
        """Return a write to `subject`'s stream; `make` gets the common fields and evidence."""
        if effective_at is not None:
            effective_at = require_aware(effective_at, field="effective_at")
        if evidence is not None and not isinstance(evidence, Mapping):
            raise InvalidInputError("evidence must be a JSON object")
        event_id = uuid4()

        def build(state: StreamState) -> LedgerEvent:
            if state.erased:
                raise SubjectErasedError(subject)
            now = self.clock.now()
            base: dict[str, Any] = {
                "originator_id": state.stream_id,
                "originator_version": state.next_version,
                "timestamp": now,
                "event_id": event_id,
                "effective_at": effective_at or now,
                "subject": subject,
            }
            sealed = seal_evidence(evidence, subject=subject, event_id=event_id, keys=self.keys)
            return make(base, sealed)

        return PendingWrite(subject_stream_id(subject), build)

    # ------------------------------------------------------------ committing

    def execute(self, pending: PendingWrite) -> Receipt:
        """Append one pending write, retrying on a lost optimistic-concurrency race."""
        result = self.execute_many([pending])[0]
        if isinstance(result, LedgerError):
            raise result
        return result

    def execute_many(self, pendings: Sequence[PendingWrite]) -> list[Receipt | LedgerError]:
        """Append many pending writes in one transaction (group commit), in order.

        Writes to the same stream are chained. A write whose validation fails gets its
        error in the result and the others go on. If the batch loses a concurrency race,
        each write is retried on its own. Raises StoreUnavailableError when the store
        cannot be reached; then nothing was written.
        """
        results: list[Receipt | LedgerError | None] = [None] * len(pendings)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            todo = [i for i, r in enumerate(results) if r is None]
            if not todo:
                break
            # After a lost race, pause with jitter and retry one write per transaction,
            # so one hot stream cannot keep failing a whole batch.
            if attempt:
                time.sleep(random.uniform(0, min(MAX_RETRY_PAUSE_S, 0.001 * 2**attempt)))  # noqa: S311
            groups = [todo] if attempt == 0 else [[i] for i in todo]
            for group in groups:
                self._commit_group(pendings, group, results)
        return [
            r if r is not None else ConcurrentWriteError("too many concurrent writes; try again")
            for r in results
        ]

    def _commit_group(
        self,
        pendings: Sequence[PendingWrite],
        group: list[int],
        results: list[Receipt | LedgerError | None],
    ) -> None:
        states = self._states_for({pendings[i].stream_id for i in group})
        events: list[LedgerEvent] = []
        built: list[int] = []
        try:
            for i in group:
                pending = pendings[i]
                state = states[pending.stream_id]
                try:
                    event = pending.build(state)
                except LedgerError as error:
                    results[i] = error
                    continue
                state.events.append(event)
                events.append(event)
                built.append(i)
            for i in built:
                hook = pendings[i].before_commit
                if hook is not None:
                    hook()
            if not events:
                return
            recordings = self.save(*events)
        except IntegrityError:
            # A concurrent writer took a version: our view of these streams is stale.
            self._stream_cache.forget(states)
            return  # the caller retries these writes
        except (OperationalError, InterfaceError) as error:
            self._stream_cache.forget(states)
            raise StoreUnavailableError(f"the event store is unavailable: {error}") from None
        except BaseException:
            self._stream_cache.forget(states)
            raise
        self._stream_cache.keep(states.values())
        for i, recording in zip(built, recordings, strict=True):
            recorded = recording.domain_event
            assert isinstance(recorded, LedgerEvent)
            event = recorded
            results[i] = Receipt(event.event_id, recording.notification.id, event.recorded_at)
            if isinstance(event, TermsPublished):
                self._terms[event.version] = event

    def _states_for(self, stream_ids: set[UUID]) -> dict[UUID, StreamState]:
        """Return private copies of the streams' states: cached ones, the rest in one read.

        A cached state may be stale if another process appended since; the append then
        fails on the (stream, version) uniqueness and the cache entry is dropped.
        """
        states = self._stream_cache.copies(stream_ids)
        missing = [i for i in stream_ids if i not in states]
        if missing:
            try:
                loaded = store.select_streams(self.recorder, missing)
            except (OperationalError, InterfaceError) as error:
                raise StoreUnavailableError(f"the event store is unavailable: {error}") from None
            for stream_id in missing:
                events = [self.mapper.to_domain_event(s) for s in loaded.get(stream_id, [])]
                states[stream_id] = StreamState(
                    stream_id, [e for e in events if isinstance(e, LedgerEvent)]
                )
        return states

    def _load(self, stream_id: UUID) -> StreamState:
        try:
            loaded = list(self.events.get(stream_id))
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(f"the event store is unavailable: {error}") from None
        return StreamState(stream_id, [e for e in loaded if isinstance(e, LedgerEvent)])

    # ----------------------------------------------------------------- reads

    @_store_errors_translated
    def terms(self, version: str) -> TermsPublished | None:
        """Return the publication of a terms version, or None if it was never published."""
        if version not in self._terms:
            state = self._load(terms_stream_id(version))
            for event in state.events:
                if isinstance(event, TermsPublished):
                    self._terms[version] = event
        return self._terms.get(version)

    @_store_errors_translated
    def terms_catalog(self) -> dict[str, TermsPublished]:
        """Return every published terms version, by version."""
        topic = get_topic(TermsPublished)
        top = self.recorder.max_notification_id() or 0
        while self._terms_seen_up_to < top:
            batch = self.recorder.select_notifications(
                start=self._terms_seen_up_to + 1, limit=500, stop=top, topics=[topic]
            )
            for notification in batch:
                event = self.mapper.to_domain_event(notification)
                assert isinstance(event, TermsPublished)
                self._terms[event.version] = event
            # Everything up to `top` has been looked at, terms or not: never scan it again.
            self._terms_seen_up_to = batch[-1].id if len(batch) == 500 else top
        return dict(self._terms)

    @_store_errors_translated
    def subject_entries(self, subject: str) -> list[Entry]:
        """Return a subject's events with their ledger positions, in ledger order."""
        stream_id = subject_stream_id(subject)
        state = self._load(stream_id)
        positions = store.stream_positions(self.recorder, stream_id) if state.events else {}
        return [Entry(positions[e.originator_version], e) for e in state.events]

    @_store_errors_translated
    def ledger_position(self, known_at: datetime | None = None) -> int:
        """Return the highest ledger position recorded by `known_at` (0 for an empty ledger).

        With `known_at` None, the latest position. Otherwise a binary search over the
        notification log by `recorded_at`, which the ledger clock keeps in ledger order.
        """
        top = self.recorder.max_notification_id() or 0
        if known_at is None or top == 0:
            return top
        if self._recorded_at(top) <= known_at:
            return top
        low, high = 0, top  # invariant: answer in [low, high), recorded_at(high) > known_at
        while high - low > 1:
            middle = (low + high) // 2
            found = self._notification_at_or_after(middle, high)
            if found is None:
                high = middle
                continue
            if self._entry_time(found) <= known_at:
                low = found.id
            else:
                high = middle
        return low

    def _recorded_at(self, position: int) -> datetime:
        notification = self._notification_at_or_after(position, position)
        assert notification is not None
        return self._entry_time(notification)

    def _entry_time(self, notification: Notification) -> datetime:
        return self.entry(notification).event.recorded_at

    def _notification_at_or_after(self, start: int, stop: int) -> Notification | None:
        batch = self.recorder.select_notifications(start=start, limit=1, stop=stop)
        return batch[0] if batch else None

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
    ) -> Decision:
        """Answer whether `party` may use `subject`'s content for `purpose` (by replay)."""
        question = self.question(subject, purpose, party, content, aspect, at, known_at)
        position = self.ledger_position(known_at and question.known_at)
        return decide(self.subject_entries(subject), self.terms_catalog(), question, position)

    def question(
        self,
        subject: str,
        purpose: str,
        party: str = PLATFORM,
        content: str | None = None,
        aspect: str = ALL_ASPECTS,
        at: datetime | None = None,
        known_at: datetime | None = None,
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

    @_store_errors_translated
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

    @_store_errors_translated
    def find_event(self, event_id: UUID) -> Entry | None:
        """Return the ledger entry with `event_id`, or None (a scan inside the store)."""
        for position in store.positions_holding(self.recorder, event_id.hex):
            batch = self.recorder.select_notifications(start=position, limit=1, stop=position)
            for notification in batch:
                candidate = self.entry(notification)
                if candidate.event.event_id == event_id:
                    return candidate
        return None


def _content_ids(content_ids: Sequence[str] | None) -> list[str] | None:
    if content_ids is None:
        return None
    if isinstance(content_ids, str):
        raise InvalidInputError("content_ids must be a list of content ids")
    ids = [check_identifier(c, field="content id") for c in content_ids]
    if not ids:
        raise InvalidInputError("content_ids, when given, must name at least one content id")
    return sorted(set(ids))


def _check_reason(reason: str | None, *, required: bool) -> None:
    if reason is None or not reason.strip():
        if required:
            raise InvalidInputError("a reason is required")
        return
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInputError(f"reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
