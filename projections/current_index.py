"""An in-memory index of current permission state, for "as known now" checks in microseconds.

`CurrentIndex` folds the ledger's entries, in ledger order, into what the current tips
of the read models hold (`perm_current`, `perm_terms_current`, `perm_erasures`, the
clock's head, the live `perm_registrations`), so that a current check reads dictionaries
instead of running a statement. It is a function of the entries folded, like the tables
(a property test holds both, and the replay, to the same answers), and it answers only
where the tips would (`evidence` returns None otherwise: the caller asks the tables).

Every live fact of a key is kept (not only its tip), so that a void finds the fact that
shows through again without asking the tables; the index needs no I/O of its own. It is
fed the batches its projector applies (`offer`) and tails the notification log itself
for any it did not see (`tail`, batches applied by another process's projector), so its
`position` is exactly the ledger prefix it reflects. A reader uses it only when that
position is at least the ledger head it must reflect (see `PermissionReader.check`).

Compact by design: rows are plain tuples, event ids 128-bit ints, repeated words
(purposes, parties, aspects, models, versions) interned; a subject with one terms
acceptance costs one dict entry and two small tuples. Memory per subject is measured by
`bench.projections` and stated in docs/benchmarks.md.
"""

from __future__ import annotations

import bisect
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import orjson

from ledger.decisions import CATALOGUE, NO_MODEL, Key, Question, Registration
from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from projections.permissions import TermsVersion, terms_tip_answers, tip_row_answers
from projections.timeline import GRANT, REVOCATION, Acceptance, Evidence, Fact, to_micros

__all__ = ["CurrentIndex"]

TAIL_BATCH: Final = 2000

# Every row starts (effective_at, position, event id): its order, and what a void names.
# (effective_at, position, event id, kind, expires_at, conditions JSON or None)
FactRow = tuple[int, int, int, int, int | None, str | None]
# (effective_at, position, event id, version)
AcceptanceRow = tuple[int, int, int, str]
# (effective_at, position, event id, registration)
RegistrationRow = tuple[int, int, int, Registration]
# (purpose, party, scope, aspect, model)
FactKey = tuple[str, str, str, str, str]

Tail = Callable[[int, int], Sequence[Entry]]
"""Return up to `limit` ledger entries after position `after`: (after, limit) -> entries."""


Row = TypeVar("Row", bound=tuple[Any, ...])
K = TypeVar("K")


def _insert(rows: tuple[Row, ...] | None, row: Row) -> tuple[Row, ...]:
    """Return `rows` (ordered by effective_at, position) with `row` in its place."""
    if rows is None:
        return (row,)
    if (row[0], row[1]) >= (rows[-1][0], rows[-1][1]):
        return (*rows, row)
    held = list(rows)
    bisect.insort(held, row, key=lambda r: (r[0], r[1]))
    return tuple(held)


def _drop(table: dict[K, tuple[Row, ...]], key: K, target: int) -> None:
    """Remove from `table[key]` the rows of event `target` (the key too if emptied)."""
    rows = table.get(key)
    if rows is None:
        return
    kept = tuple(row for row in rows if row[2] != target)
    if not kept:
        del table[key]
    elif len(kept) != len(rows):
        table[key] = kept


class CurrentIndex:
    """The current tips of the permission read models, in memory (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.position = 0  # the last ledger position folded
        self.recorded_at: int | None = None  # the latest recorded_at folded
        self.ready = False  # set once a tail has reached the log's end
        # subject -> key -> live facts of that key, ordered by (effective_at, position)
        self._facts: dict[str, dict[FactKey, tuple[FactRow, ...]]] = {}
        self._acceptances: dict[str, tuple[AcceptanceRow, ...]] = {}
        self._erasures: dict[str, str] = {}
        self._terms: dict[str, TermsVersion] = {}
        self._registrations: dict[str, tuple[RegistrationRow, ...]] = {}
        self._owned: dict[str, list[str]] = {}  # owner -> contents it registered

    # ------------------------------------------------------------------- feeding

    def offer(self, entries: Sequence[Entry], *, after: int) -> bool:
        """Fold `entries` (ledger order, all after `after`) if the index is at `after`.

        Returns False, folding nothing, when the index is elsewhere (`tail` fills gaps).
        """
        with self._lock:
            if self.position != after:
                return False
            self._fold(entries)
        return True

    def tail(
        self, read: Tail, *, batch: int = TAIL_BATCH, stop: Callable[[], bool] | None = None
    ) -> bool:
        """Fold every entry `read` returns after the index's position; tell whether the
        log's end was reached (then the index is marked ready).

        `stop` is asked before each batch: True stops, so a long first build can give
        way to other work.
        """
        while stop is None or not stop():
            after = self.position
            entries = read(after, batch)
            if not entries:
                self.ready = True
                return True
            self.offer(entries, after=after)
        return False

    def _fold(self, entries: Iterable[Entry]) -> None:
        intern = sys.intern
        for entry in entries:
            event = entry.event
            position = entry.position
            recorded_at = to_micros(event.recorded_at)
            if self.recorded_at is None or recorded_at > self.recorded_at:
                self.recorded_at = recorded_at
            self.position = position
            if isinstance(event, ConsentGranted | ConsentRevoked):
                granted = isinstance(event, ConsentGranted)
                expires_at = conditions = None
                if isinstance(event, ConsentGranted):
                    if event.expires_at is not None:
                        expires_at = to_micros(event.expires_at)
                    if event.conditions:
                        conditions = orjson.dumps(list(event.conditions)).decode()
                row: FactRow = (
                    to_micros(event.effective_at),
                    position,
                    event.event_id.int,
                    GRANT if granted else REVOCATION,
                    expires_at,
                    conditions,
                )
                keys = self._facts.setdefault(event.subject, {})
                purpose, party = intern(event.purpose), intern(event.party)
                aspect, model = intern(event.aspect), intern(event.model or NO_MODEL)
                for scope in event.content_ids or (CATALOGUE,):
                    key = (purpose, party, scope, aspect, model)
                    keys[key] = _insert(keys.get(key), row)
            elif isinstance(event, TermsAccepted):
                accepted: AcceptanceRow = (
                    to_micros(event.effective_at),
                    position,
                    event.event_id.int,
                    intern(event.version),
                )
                self._acceptances[event.subject] = _insert(
                    self._acceptances.get(event.subject),
                    accepted,
                )
            elif isinstance(event, TermsPublished):
                defaults = {c["purpose"]: c["default"] for c in event.clauses}
                version = intern(event.version)
                self._terms[version] = TermsVersion(
                    version, to_micros(event.effective_from), defaults
                )
            elif isinstance(event, ContentRegistered):
                registered: RegistrationRow = (
                    to_micros(event.effective_at),
                    position,
                    event.event_id.int,
                    Registration.of(event),
                )
                self._registrations[event.content_id] = _insert(
                    self._registrations.get(event.content_id),
                    registered,
                )
                owned = self._owned.setdefault(event.subject, [])
                if event.content_id not in owned:
                    owned.append(event.content_id)
            elif isinstance(event, EventVoided):
                self._void(event.subject, event.voided_event_id.int)
            elif isinstance(event, SubjectErased):
                self._erasures[event.subject] = event.event_id.hex

    def _void(self, subject: str, target: int) -> None:
        """Drop the voided grant, revocation, acceptance or registration (in its subject)."""
        keys = self._facts.get(subject)
        for key in list(keys or ()):
            _drop(keys, key, target)  # type: ignore[arg-type]
        _drop(self._acceptances, subject, target)
        for content in self._owned.get(subject, ()):
            _drop(self._registrations, content, target)

    # --------------------------------------------------------------------- reads

    def subjects(self) -> int:
        """Return how many subjects the index holds state for."""
        with self._lock:
            return len(self._acceptances.keys() | self._facts.keys() | self._erasures.keys())

    def terms(self) -> dict[str, TermsVersion]:
        """Return the published terms folded so far, by version (do not modify)."""
        return self._terms

    def evidence(
        self, question: Question, keys: Sequence[Key], *, at: int, known_at: int
    ) -> tuple[Evidence, Registration | None] | None:
        """Return the question's evidence as the current tips hold it, and with the
        question's content its registration in force, or None when the
        tips cannot answer (the same conditions as `projections.permissions.read_current`:
        a fact recorded after `known_at`, a tip not effective by `at` or an expired grant).

        `keys` are `keys_of(question)`; the evidence's position is the index's. Lookups
        and position are read under one lock: a snapshot of one ledger prefix.
        """
        subject = question.subject
        purpose = question.purpose.name
        with self._lock:
            if self.recorded_at is not None and self.recorded_at > known_at:
                return None
            classes: list[tuple[Fact | None, Fact | None]] = []
            facts = self._facts.get(subject)
            for key in keys:
                rows = (
                    facts.get((purpose, key.party, key.scope, key.aspect, key.model))
                    if facts is not None
                    else None
                )
                if not rows:
                    classes.append((None, None))
                    continue
                effective_at, position, event_id, kind, expires_at, conditions = rows[-1]
                if not tip_row_answers(kind, effective_at, expires_at, at):
                    return None
                fact = Fact(
                    kind, f"{event_id:032x}", effective_at, position, expires_at, conditions
                )
                classes.append((fact, fact))
            acceptance = None
            accepted = self._acceptances.get(subject)
            if accepted is not None:
                effective_at, position, event_id, version = accepted[-1]
                acceptance = Acceptance(
                    f"{event_id:032x}",
                    version,
                    effective_at,
                    position,
                    self._terms[version].effective_from,
                )
                if not terms_tip_answers(acceptance, at):
                    return None
            registration = None
            if question.content is not None:
                for effective_at, _, _, held in reversed(
                    self._registrations.get(question.content, ())
                ):
                    if effective_at <= at:
                        registration = held
                        break
            evidence = Evidence(
                tuple(classes), acceptance, self._erasures.get(subject), self.position
            )
            return evidence, registration

    def registration(self, content: str, *, at: int) -> Registration | None:
        """Return the live registration of `content` in force at `at`, as folded so far."""
        with self._lock:
            for effective_at, _, _, held in reversed(self._registrations.get(content, ())):
                if effective_at <= at:
                    return held
        return None
