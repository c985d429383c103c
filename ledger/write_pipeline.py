# long module: the write pipeline and its stream cache, the one place commands become events
"""The one way a command becomes an event: load, decide, save, in group commits.

`WritePipeline.execute_many` takes commands and appends their events in one transaction
(group commit), in order:
1. find each command's stream (a void's, from the event index) and, for an acceptance,
   the terms it names;
2. take the writers' lock (`store.writers_lock`: every writer of every process), read
   the ledger clock once, never below the last `recorded_at` (so `recorded_at` never
   decreases along positions), and load the streams (from the stream cache, or in one
   read);
3. decide each command (`ledger.deciders`: pure), chaining commands to one stream, and
   seal the evidence's personal fields of what was decided;
4. destroy the keys of erased subjects, insert and commit on the writers' turn
   (`store.WritersTurn`: on PostgreSQL the lock's own transaction, so a group commit
   costs two round trips, the lock and the commit).

The event index (void targets, `ConsentLedger.find_event`) is caught up from the log by
writers once `INDEX_LAG` events have gathered, in one transaction, and by a lookup that
does not find its event, so an append never pays a second commit for it.

A command whose event id its stream already holds is not decided again: it is answered
with that event's receipt. That makes a write with a given event id append at most once,
whoever sends it how often (an `Idempotency-Key` retry reuses its reservation's event id,
`services.http.idempotency`), and a database constraint decides it: the stream is
decided on the state loaded under the writers' lock, and a state that missed an append
fails the save on the event store's (stream, version) primary key, so the retry below
reloads it and finds the event.

A refused command gets its LedgerError in the result; the others go on. A lost
optimistic-concurrency race (a stream's version taken by a writer the cache did not
know of) retries each remaining command in a transaction of its own, after a jittered
back-off. Driver errors become StoreUnavailableError here (`store.unavailable_translated`);
then nothing was written, or (a connection lost during the commit) the outcome is
unknown: the insert is never retried below this module (the library's own insert,
which retries, is not used on PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from ledger import store
from ledger.commands import AcceptTerms, Command, Void
from ledger.crypto import SubjectKeyStore, seal_evidence
from ledger.deciders import StreamState, WriteState, decide
from ledger.errors import ConcurrentWriteError, LedgerError
from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    LedgerEvent,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from ledger.instants import format_instant
from ledger.terms_catalog import TermsCatalog
from ledger.vocabulary import Vocabulary

MAX_WRITE_ATTEMPTS: Final = 40
MAX_RETRY_PAUSE_S: Final = 0.05
STREAM_CACHE_SIZE: Final = 10_000
INDEX_LAG: Final = 256  # writers index the log's events once this many have gathered
NO_STREAM: Final = UUID(int=0)  # a void of an unknown event decides on an empty stream


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

    def clear(self) -> None:
        """Forget every remembered state."""
        with self._lock:
            self._states.clear()

    def forget(self, stream_ids: Iterable[UUID]) -> None:
        """Drop the remembered states of `stream_ids`."""
        with self._lock:
            for stream_id in list(stream_ids):
                self._states.pop(stream_id, None)


def _recorded(state: StreamState, event_id: UUID) -> LedgerEvent | None:
    """Return the event of the stream with `event_id`, if it holds one."""
    for event in reversed(state.events):
        if event.event_id == event_id:
            return event
    return None


def backoff(attempt: int) -> None:
    """Pause before retry `attempt` (>= 1): jittered, doubling, at most MAX_RETRY_PAUSE_S."""
    time.sleep(random.uniform(0, min(MAX_RETRY_PAUSE_S, 0.001 * 2**attempt)))  # noqa: S311


_Results = list[Receipt | LedgerError | None]


class WritePipeline:
    """Append commands' events: group commit, concurrency retry, stream cache, index."""

    def __init__(
        self,
        app: Application[UUID],
        *,
        keys: SubjectKeyStore,
        vocabulary: Vocabulary,
        terms: TermsCatalog,
        clock: Callable[[], datetime],
    ) -> None:
        self._app = app
        self.keys = keys
        self.vocabulary = vocabulary
        self.terms = terms
        self.clock = clock
        self.cache = StreamCache(STREAM_CACHE_SIZE)
        self._last: tuple[int, datetime] | None = None  # (position, recorded_at) saved last

    def execute(self, command: Command) -> Receipt:
        """Append one command's event; raise its refusal."""
        result = self.execute_many([command])[0]
        if isinstance(result, LedgerError):
            raise result
        return result

    def execute_many(self, commands: Sequence[Command]) -> list[Receipt | LedgerError]:
        """Append many commands' events in one transaction, in order.

        Raises StoreUnavailableError when the store cannot be reached; then nothing was written.
        """
        results: _Results = [None] * len(commands)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            todo = [i for i, r in enumerate(results) if r is None]
            if not todo:
                break
            # After a lost race, retry one write per transaction, so one hot stream
            # cannot keep failing a whole batch.
            if attempt:
                backoff(attempt)
            for group in [todo] if attempt == 0 else [[i] for i in todo]:
                with store.unavailable_translated():
                    self._commit_group(commands, group, results)
        return [
            r if r is not None else ConcurrentWriteError("too many concurrent writes; try again")
            for r in results
        ]

    def _commit_group(
        self,
        commands: Sequence[Command],
        group: list[int],
        results: _Results,
    ) -> None:
        streams: dict[int, UUID] = {}
        batch: dict[UUID, UUID] = {}  # event id -> stream, of the commands before in the group
        for i in group:
            streams[i] = self._stream_of(commands[i], batch)
            batch[commands[i].event_id] = streams[i]
        terms = {
            c.version: self.terms.get(c.version)
            for c in (commands[i] for i in group)
            if isinstance(c, AcceptTerms)
        }
        try:
            since = self._last[0] if self._last is not None else None
            with store.writers_lock(self._app.recorder, since=since) as turn:
                self._forget_written_by_others(turn)
                now = self._ledger_time(turn)
                states = self._states_for(set(streams.values()))
                decided: list[tuple[int, LedgerEvent]] = []
                for i in group:
                    command, state = commands[i], states[streams[i]]
                    recorded = _recorded(state, command.event_id)
                    if recorded is not None:
                        # Its event is already in the stream (an earlier try of the same
                        # write): answer that event. One decided in this very group is
                        # answered on the next pass, once saved (results[i] stays None).
                        if all(e is not recorded for _, e in decided):
                            results[i] = self._receipt_of(recorded)
                        continue
                    named = terms.get(command.version) if isinstance(command, AcceptTerms) else None
                    try:
                        event = self._sealed(
                            decide(WriteState(state, self.vocabulary, named), command, now)
                        )
                    except LedgerError as error:
                        results[i] = error
                        continue
                    state.events.append(event)
                    decided.append((i, event))
                if not decided:
                    return
                saved = self._save(turn, [event for _, event in decided])
                self._last = (saved[-1], now)
        except IntegrityError:
            # A concurrent writer took a version: our view of these streams is stale.
            self.cache.forget(streams.values())
            return  # the caller retries these commands
        except BaseException:
            self.cache.forget(streams.values())
            raise
        self.cache.keep(s for s in states.values() if s.stream_id != NO_STREAM)
        for (i, event), position in zip(decided, saved, strict=True):
            results[i] = Receipt(event.event_id, position, event.recorded_at)
            if isinstance(event, TermsPublished):
                self.terms.remember(event)

    def _receipt_of(self, event: LedgerEvent) -> Receipt:
        """Return the receipt of an event the ledger holds (looked up by its stream)."""
        positions = store.stream_positions(self._app.recorder, event.originator_id)
        return Receipt(event.event_id, positions[event.originator_version], event.recorded_at)

    def _save(self, turn: store.WritersTurn, events: list[LedgerEvent]) -> list[int]:
        """Destroy erased subjects' keys, append and commit; return the positions.

        An erased subject's key is destroyed before the append: if the append then
        fails, the personal data is already unreadable and a repeated erasure completes it.
        """
        for event in events:
            if isinstance(event, SubjectErased):
                self.keys.destroy(event.subject)
        return turn.insert([self._app.mapper.to_stored_event(event) for event in events])

    def _stream_of(self, command: Command, batch: Mapping[UUID, UUID]) -> UUID:
        """Return the stream a command appends to.

        A void's is its target's: an earlier command's of the same group (`batch`), or
        else found in the event index.
        """
        if command.stream_id is not None:
            return command.stream_id
        assert isinstance(command, Void)
        if command.voided_event_id in batch:
            return batch[command.voided_event_id]
        located = self.locate(command.voided_event_id)
        return NO_STREAM if located is None else located[1]

    def locate(self, event_id: UUID) -> tuple[int, UUID] | None:
        """Return the (position, stream id) of an event, catching the index up if needed."""
        recorder = self._app.recorder
        found = store.locate(recorder, event_id)
        if found is None and self.catch_up_index(lag=1):
            found = store.locate(recorder, event_id)
        return found

    def catch_up_index(self, *, lag: int = 1) -> bool:
        """Index the log's events the index lacks, if at least `lag`; tell if any were added.

        The index is derived from the notification log (positions commit in order), so
        catching up from its highest position never leaves a gap.
        """
        top, indexed = store.heads(self._app.recorder)
        if top - indexed < lag:
            return False
        self._index_between(indexed, top)
        return True

    def _index_between(self, indexed: int, top: int) -> None:
        """Index the log's events after position `indexed`, up to `top`."""
        recorder = self._app.recorder
        while indexed < top:
            batch = recorder.select_notifications(
                start=indexed, limit=store.INDEX_CATCH_UP_BATCH, inclusive_of_start=False
            )
            if not batch:
                break
            rows = []
            for notification in batch:
                event = self._app.mapper.to_domain_event(notification)
                assert isinstance(event, LedgerEvent)
                rows.append(
                    store.IndexedEvent(event.event_id, notification.id, event.originator_id)
                )
            store.index_events(recorder, rows)
            indexed = batch[-1].id

    def _forget_written_by_others(self, turn: store.WritersTurn) -> None:
        """Drop the cached states of the streams other writers appended to since ours.

        So a stream another process wrote is loaded afresh instead of failing a whole
        group commit on its version (and retrying it write by write).
        """
        if self._last is None:
            return
        if turn.written_since is None:
            self.cache.clear()
        else:
            self.cache.forget(turn.written_since)

    def _ledger_time(self, turn: store.WritersTurn) -> datetime:
        """Return the clock's reading, or the last `recorded_at` if that is later.

        Requires the writers' turn (lock held, heads and the log's last event read under
        it): then no other writer appends between this reading and the save. The last
        `recorded_at` is the one this pipeline saved, if nothing was appended since, or
        else the log's last event's. Indexes the log's events once INDEX_LAG have
        gathered (one transaction for them all).
        """
        top, indexed = turn.heads
        if top - indexed >= INDEX_LAG:
            self._index_between(indexed, top)
        if top == 0 or turn.last is None:
            last = None
        elif self._last is not None and self._last[0] == top:
            last = self._last[1]
        else:
            event = self._app.mapper.to_domain_event(turn.last)
            last = event.timestamp if isinstance(event, LedgerEvent) else None
        now = self.clock()
        return now if last is None or now >= last else last

    def _sealed(self, event: LedgerEvent) -> LedgerEvent:
        """Return `event` with the personal fields of its evidence encrypted."""
        if not isinstance(event, TermsAccepted | ConsentGranted | ConsentRevoked):
            return event
        if event.evidence is None:
            return event
        sealed = seal_evidence(
            event.evidence, subject=event.subject, event_id=event.event_id, keys=self.keys
        )
        return dataclasses.replace(event, evidence=sealed)

    def _states_for(self, stream_ids: set[UUID]) -> dict[UUID, StreamState]:
        """Return private copies of the streams' states: cached ones, the rest in one read.

        A cached state may be stale if another process appended since; the append then
        fails on the (stream, version) uniqueness and the cache entry is dropped.
        """
        states = self.cache.copies(stream_ids)
        missing = [i for i in stream_ids if i not in states]
        if missing:
            loaded = store.select_streams(self._app.recorder, missing)
            for stream_id in missing:
                events = [self._app.mapper.to_domain_event(s) for s in loaded.get(stream_id, [])]
                states[stream_id] = StreamState(
                    stream_id, [e for e in events if isinstance(e, LedgerEvent)]
                )
        return states
