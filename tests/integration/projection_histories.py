"""Random ledger histories written through the real use cases, for read-model tests.

A history is a list of operations (plain data, so hypothesis can shrink it) played
against a ledger whose clock the test controls: publications, acceptances, grants and
revocations with backfilled or future effective times and expiries, voids, erasures,
clock ticks, projector catch-ups in small batches and expiry-scheduler runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from ledger.application import Receipt
from ledger.commands import AcceptTerms, Command, Grant, Revoke
from ledger.errors import LedgerError
from projections.expiry import ExpiryScheduler
from projections.runner import Projector
from services.bootstrap import Services, bootstrap
from services.settings import Settings

# A small vocabulary, so that facts pile up on the same keys and shadow one another.
SUBJECTS = ("ann", "bob")
PURPOSES = ("ai-training", "ai-generative-training")
GOVERNED = ("ai-training", "data-mining")
PARTIES = ("platform", "*", "acme")
ASKED_PARTIES = (*PARTIES, "beta")
CONTENTS = ("c1", "c2")
ASKED_CONTENTS = (None, *CONTENTS, "c9")
WRITTEN_ASPECTS = ("all", "all", "voice")
OFFSETS = range(-6, 16)  # seconds around an example's start: collisions are frequent


class ManualClock:
    """A ledger clock the test moves by hand; it never goes backwards."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        """Return the clock's reading."""
        return self.current

    def tick(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current += timedelta(seconds=seconds)


def start_clock() -> ManualClock:
    """Return a clock at a fixed, whole-second instant (far from the system clock)."""
    return ManualClock(datetime(2030, 1, 1, tzinfo=UTC))


def clocked_services(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    """Yield services for `settings` whose ledger clock the test moves (for a fixture)."""
    clock = start_clock()
    wired = bootstrap(settings, clock=clock)
    yield wired, clock
    wired.close()


offsets = st.sampled_from(OFFSETS)
maybe_offset = st.none() | offsets
subjects = st.sampled_from(SUBJECTS)
scopes = st.none() | st.lists(st.sampled_from(CONTENTS), min_size=1, max_size=2, unique=True)

clauses = st.dictionaries(st.sampled_from(GOVERNED), st.sampled_from(["granted", "denied"]))
operations = st.one_of(
    st.tuples(st.just("publish"), offsets, clauses),
    st.tuples(st.just("accept"), subjects, st.integers(0, 3), maybe_offset),
    *[
        st.tuples(
            st.just("grant"),
            subjects,
            st.sampled_from(PURPOSES),
            st.sampled_from(PARTIES),
            scopes,
            st.sampled_from(WRITTEN_ASPECTS),
            maybe_offset,
            st.none() | st.integers(1, 12),
        )
    ]
    * 5,
    *[
        st.tuples(
            st.just("revoke"),
            subjects,
            st.sampled_from(PURPOSES),
            st.sampled_from(PARTIES),
            scopes,
            st.sampled_from(WRITTEN_ASPECTS),
            maybe_offset,
        )
    ]
    * 3,
    *[
        st.tuples(
            st.just("again"),
            st.integers(0, 3),
            st.booleans(),
            st.none() | offsets | offsets,  # often backfilled behind the earlier write
            st.none() | st.integers(1, 12),
            st.sampled_from([0, 0, 0, 1, 2, 3]),  # mostly the very same key
        )
    ]
    * 5,
    st.tuples(st.just("void"), st.sampled_from([0, 0, 1, 2, 3])),
    st.tuples(st.just("void"), st.sampled_from([0, 0, 1, 2, 3])),
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 1, 2, 7])),
    st.tuples(st.just("project"), st.integers(1, 4)),
    st.tuples(st.just("expire")),
)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Draw a history: usually terms first, then random writes; one in eight erases."""
    ops: list[tuple[Any, ...]] = []
    if draw(st.integers(0, 3)) > 0:
        ops.append(("publish", draw(offsets), draw(clauses)))
        ops.extend(("accept", s, 0, draw(maybe_offset)) for s in SUBJECTS)
    ops.extend(draw(st.lists(operations, min_size=4, max_size=18)))
    if draw(st.integers(0, 7)) == 0:
        ops.insert(draw(st.integers(0, len(ops))), ("erase", draw(subjects)))
    if draw(st.integers(0, 2)) > 0:
        # Project in batches of a few events: tips must move across batches too.
        ops.append(("project", draw(st.integers(1, 5))))
    return ops


@dataclass(frozen=True)
class Asked:
    """A question a write speaks to, with the write's instants relative to the start."""

    question: tuple[str, str, str, str | None, str]  # subject, purpose, party, content, aspect
    moments: tuple[timedelta, ...]  # effective_at (and expires_at): where answers change
    recorded: timedelta
    expires: timedelta | None = None
    event_id: UUID | None = None


@dataclass
class Played:
    """What a played history left behind: names, and instants worth asking about."""

    prefix: str
    start: datetime
    subjects: list[str]
    versions: list[str] = field(default_factory=list)
    voidable: list[UUID] = field(default_factory=list)
    facts: list[Asked] = field(default_factory=list)
    voids: list[tuple[UUID, timedelta]] = field(default_factory=list)  # target, recorded
    instants: set[datetime] = field(default_factory=set)
    recorded: set[datetime] = field(default_factory=set)


def play(
    services: Services, clock: ManualClock, history: list[tuple[Any, ...]], prefix: str
) -> Played:
    """Write `history` through the use cases; names get `prefix` so examples stay apart.

    Refused writes (an expiry before its start, a second void, an erased subject...)
    write nothing and are skipped, as a caller would see them refused.
    """
    ledger = services.ledger
    start = clock.now()
    played = Played(prefix, start, [f"{prefix}{s}" for s in SUBJECTS])

    def when(offset: int | None) -> datetime | None:
        return None if offset is None else start + timedelta(seconds=offset)

    def subject(name: str) -> str:
        return f"{prefix}{name}"

    writes: list[tuple[Any, ...]] = []
    for op in history:
        kind = op[0]
        clock.tick(0.25)
        if kind == "again" and writes:
            op = again(writes[-1 - op[1] % len(writes)], *op[2:])
            kind = op[0]
        try:
            if kind == "publish":
                version = f"{prefix}v{len(played.versions)}"
                clauses = [{"purpose": p, "default": d} for p, d in op[2].items()]
                ledger.publish_terms(version, when(op[1]) or start, clauses)
                played.versions.append(version)
                played.instants.add(when(op[1]) or start)
            elif kind == "accept" and played.versions:
                version = played.versions[op[2] % len(played.versions)]
                receipt = ledger.accept_terms(subject(op[1]), version, effective_at=when(op[3]))
                played.voidable.append(receipt.event_id)
                moment = (when(op[3]) or receipt.recorded_at) - start
                played.facts.append(
                    Asked(
                        (subject(op[1]), "ai-training", "platform", None, "all"),
                        (moment,),
                        receipt.recorded_at - start,
                        event_id=receipt.event_id,
                    )
                )
            elif kind == "grant":
                effective = when(op[6])
                base = effective or clock.now()
                expires = None if op[7] is None else base + timedelta(seconds=op[7])
                receipt = ledger.grant(
                    subject(op[1]),
                    op[2],
                    party=op[3],
                    content_ids=op[4],
                    aspect=op[5],
                    effective_at=effective,
                    expires_at=expires,
                )
                played.voidable.append(receipt.event_id)
                played.instants.update(i for i in (effective, expires) if i is not None)
                played.facts.extend(asked_about(subject(op[1]), op, receipt, start, expires))
                writes.append(op)
            elif kind == "revoke":
                receipt = ledger.revoke(
                    subject(op[1]),
                    op[2],
                    party=op[3],
                    content_ids=op[4],
                    aspect=op[5],
                    effective_at=when(op[6]),
                )
                played.voidable.append(receipt.event_id)
                played.facts.extend(asked_about(subject(op[1]), op, receipt, start, None))
                writes.append(op)
            elif kind == "void" and played.voidable:
                # Mostly one of the latest writes: often the tip of its key.
                target = played.voidable[-1 - op[1] % len(played.voidable)]
                voided = ledger.void(target, "entered in error")
                played.voids.append((target, voided.recorded_at - start))
            elif kind == "erase":
                ledger.erase(subject(op[1]))
            elif kind == "tick":
                clock.tick(op[1])
            elif kind == "project":
                Projector(ledger, services.projector.model, batch_size=op[1]).catch_up()
            elif kind == "expire":
                ExpiryScheduler(ledger, services.projector.model, clock).run_due()
        except LedgerError:
            continue
    for entry in ledger.iter_entries(0):
        event = entry.event
        if str(getattr(event, "subject", getattr(event, "version", ""))).startswith(prefix):
            played.recorded.add(event.recorded_at)
            played.instants.add(event.effective_at)
    played.instants.add(clock.now())
    return played


def again(
    earlier: tuple[Any, ...], grant: bool, offset: int | None, expiry: int | None, narrow: int
) -> tuple[Any, ...]:
    """Return a grant or revocation on an earlier write's key, or on a narrower one
    (named party for `*`, one content for the catalogue, `voice` for `all`), so that
    facts shadow, outrank and outlive one another.
    """
    _, subject, purpose, party, scope, aspect = earlier[:6]
    if narrow == 1 and party == "*":
        party = "acme"
    elif narrow == 2 and scope is None:
        scope = ["c1"]
    elif narrow == 3 and aspect == "all":
        aspect = "voice"
    if grant:
        return ("grant", subject, purpose, party, scope, aspect, offset, expiry)
    return ("revoke", subject, purpose, party, scope, aspect, offset)


def asked_about(
    subject: str,
    op: tuple[Any, ...],
    receipt: Receipt,
    start: datetime,
    expires: datetime | None,
) -> list[Asked]:
    """Return the questions a grant or revocation speaks to most directly."""
    effective = receipt.recorded_at if op[6] is None else start + timedelta(seconds=op[6])
    moments = tuple(m - start for m in (effective, expires) if m is not None)
    recorded = receipt.recorded_at - start
    expiry = None if expires is None else expires - start
    return [
        Asked((subject, op[2], op[3], content, op[5]), moments, recorded, expiry, receipt.event_id)
        for content in op[4] or [None]
    ]


def event_instants(played: Played) -> list[timedelta]:
    """Return the instants where something changes (effective times, expiries, terms),
    relative to the example's start: hypothesis needs choices that depend on the
    history alone, not on the clock the examples share.
    """
    return sorted({i - played.start for i in played.instants})


def question_instants(played: Played) -> list[timedelta]:
    """Return instants to ask at: a grid, and event instants a microsecond either side."""
    grid = {timedelta(seconds=s) for s in range(-7, 30)}
    near = {i + timedelta(microseconds=d) for i in event_instants(played) for d in (-1, 1)}
    return sorted(grid | near)


def recorded_instants(played: Played) -> list[timedelta]:
    """Return the example's recording instants, relative to its start."""
    return sorted({i - played.start for i in played.recorded})


def known_instants(played: Played) -> list[timedelta]:
    """Return ledger instants to ask as of: a microsecond either side of each recording."""
    near = {i + timedelta(microseconds=d) for i in recorded_instants(played) for d in (-1, 1)}
    return sorted(near | {timedelta(seconds=-1)})


def instants_for(played: Played) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """Return strategies for `at` and `known_at`: None (now), an exact instant where
    something changes (most often), or one nearby.
    """

    def absolute(offset: timedelta) -> datetime:
        return played.start + offset

    at = st.one_of(
        st.none(),
        st.sampled_from(event_instants(played)).map(absolute),
        st.sampled_from(event_instants(played)).map(absolute),
        st.sampled_from(question_instants(played)).map(absolute),
    )
    known_at = st.one_of(
        st.none(),
        st.none(),
        st.sampled_from(recorded_instants(played) or [timedelta(0)]).map(absolute),
        st.sampled_from(known_instants(played)).map(absolute),
    )
    return at, known_at


PURPOSES = ("ai-training", "ai-generative-training")


def write_history(services: Services, subjects: int) -> None:
    """Write a varied history for `subjects` subjects, in a few group commits."""
    ledger = services.ledger
    ledger.publish_terms(
        "v1",
        datetime(2024, 1, 1, tzinfo=UTC),
        [{"purpose": "ai-training", "default": "granted"}],
    )
    now = ledger.clock.now()
    pending: list[Command] = []
    for n in range(subjects):
        subject = f"artist-{n}"
        pending.append(
            AcceptTerms(subject=subject, version="v1", effective_at=now - timedelta(days=30))
        )
        pending.append(
            Grant(
                subject=subject,
                purpose=PURPOSES[n % 2],
                party=("platform", "*", "acme")[n % 3],
                content_ids=[f"track-{n}"] if n % 4 else None,
                effective_at=now - timedelta(days=n % 7),
                expires_at=now + timedelta(days=1) if n % 5 == 0 else None,
            )
        )
        if n % 3 == 0:
            pending.append(
                Revoke(
                    subject=subject,
                    purpose="ai-training",
                    content_ids=[f"track-{n}"],
                    effective_at=now,
                )
            )
    for start in range(0, len(pending), 200):
        ledger.execute_many(pending[start : start + 200])
    receipts = [
        ledger.grant("artist-1", "ai-training", party="beta"),
        ledger.revoke("artist-2", "ai-generative-training", party="*"),
    ]
    ledger.void(receipts[0].event_id, "entered in error")
    ledger.erase("artist-4")
