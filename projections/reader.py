# long module: single checks, batch filters and the signals' batch reads share one seam
"""The read side's entry: answer permission questions for every entrypoint.

Entrypoints (CLI, HTTP, relay) ask here, never the event store directly. Answers come
from the read models (`projections.read_models`): the current tips when they can answer, the
bitemporal timeline otherwise, each by indexed lookups. The replay in
`ConsentLedger.check` stays the reference, and the fallback when the read models cannot
be brought up to date in time.

Freshness: when a projector runs in this process (the HTTP server), a read waits briefly
for `min_position`, or for the ledger head as the read began when none is given. Without
one (the CLI, one-shot), a read first catches the read models up to the ledger head
itself. Either way answers are current and reflect the caller's own writes; a read that
cannot reach the position it needs within its bound answers by replay. Every answer
reports the ledger position it reflects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ledger.application import ConsentLedger
from ledger.decisions import (
    Decision,
    Key,
    Question,
    Registration,
    keys_of,
    question_keys,
    with_contributors,
)
from ledger.errors import ConflictError
from ledger.vocabulary import ALL_ASPECTS, PLATFORM, check_identifier
from projections.current_index import CurrentIndex
from projections.permissions import resolve, terms_tip_answers, tip_answers
from projections.read_models import PairTips
from projections.read_models.view import registration_from
from projections.runner import Projector
from projections.timeline import Acceptance, Evidence, Fact, to_micros

DEFAULT_CATCH_UP_SECONDS: Final = 2.0
DEFAULT_WAIT_SECONDS: Final = 1.0
FILTER_CHUNK: Final = 500


@dataclass(frozen=True)
class FilterAnswer:
    """A batch filter's answer: the allowed pairs, in input order, and the position."""

    allowed: list[tuple[str, str]]
    position: int


class PositionNotReachedError(ConflictError):
    """Refuse to answer as of a position the ledger has not reached (409)."""

    title = "Position not reached"

    def __init__(self, wanted: int, head: int) -> None:
        super().__init__(
            f"min_position {wanted} is beyond the ledger's head {head}: no write at that "
            "position has been committed, so no answer can reflect it"
        )
        self.wanted = wanted
        self.head = head


class _NeedsTables(Exception):
    """An in-memory answer that needs a table read (a contributor the index cannot answer)."""


class PermissionReader:
    """Answer `check` and `filter` questions from the read models (replay as fallback).

    With no `projector` every answer is a replay (the reference behaviour).
    """

    def __init__(
        self,
        ledger: ConsentLedger,
        projector: Projector | None = None,
        *,
        catch_up_seconds: float = DEFAULT_CATCH_UP_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.projector = projector
        self.catch_up_seconds = catch_up_seconds
        self.wait_seconds = wait_seconds

    # ---------------------------------------------------------------- freshness

    def require_reachable(self, min_position: int | None) -> None:
        """Refuse a `min_position` beyond the ledger's head: no write there was committed,
        so no wait could reach it, and a lower answer must not pass for it."""
        if min_position is None:
            return
        head = self.ledger.ledger_position()
        if min_position > head:
            raise PositionNotReachedError(min_position, head)

    def fresh(self, min_position: int | None = None) -> bool:
        """Bring the read models to where a read needs them; tell whether they got there.

        With a projector running here: wait up to `wait_seconds` for `min_position` (no
        wait without one). Otherwise: catch up to the ledger head (and `min_position`)
        for at most `catch_up_seconds`.
        """
        projector = self.projector
        if projector is None:
            return False
        if projector.running:
            # Without an explicit position a read still reflects every write committed
            # before it began: a client that reads after its 201 sees its own write.
            target = projector.head() if min_position is None else min_position
            return projector.wait_for(target, self.wait_seconds)
        target = max(min_position or 0, projector.head())
        reached = projector.catch_up(
            target=target, deadline=time.monotonic() + self.catch_up_seconds
        )
        return reached >= target

    # -------------------------------------------------------------------- check

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
        min_position: int | None = None,
        model: str | None = None,
    ) -> Decision:
        """Answer one question; `min_position` asks to reflect at least that write.

        Raises PositionNotReachedError when `min_position` lies beyond the ledger's head.
        """
        self.require_reachable(min_position)
        question = self.ledger.question(
            subject, purpose, party, content, aspect, at, known_at, model=model
        )
        known_at_given = known_at is not None
        projector = self.projector
        if projector is not None and not known_at_given:
            decision = self._from_index(projector, question, min_position)
            if decision is not None:
                return decision
        if projector is not None and projector.running and min_position is None:
            # The common server read: one statement reads the answer, the view's position
            # and the ledger head; only a view behind the head makes the read wait.
            evidence = projector.view.evidence(
                question, known_at_given=known_at_given, with_head=True, with_registration=True
            )
            if not evidence.lagging:
                return self._work(question, evidence, known_at_given, tips=True)
        if not self.fresh(min_position):
            return self.ledger.check(
                subject,
                purpose,
                party=party,
                content=content,
                aspect=aspect,
                at=at,
                known_at=known_at,
                model=model,
            )
        return self.answer(question, known_at_given=known_at_given)

    def _from_index(
        self, projector: Projector, question: Question, min_position: int | None
    ) -> Decision | None:
        """Answer an "as known now" question from the projector's in-memory index, or
        return None when it cannot: no index, one not built yet, one behind the position
        the read must reflect (`min_position`, else the ledger head as the read began),
        or tips that cannot answer (then the tables do).
        """
        index = self._ready_index()
        if index is None:
            return None
        # Read the head before the index: the answer reflects every write committed
        # before the read began, and the index only moves forward.
        wanted = projector.view.ledger_head() if min_position is None else min_position
        if index.position < wanted:
            return None
        return self.index_answer(index, question)

    def index_head(self) -> int | None:
        """Read the ledger head now, for `check_in_memory`; None when no in-memory index
        could answer (none kept here, or not built yet), so there is nothing to read."""
        projector = self.projector
        if projector is None or self._ready_index() is None:
            return None
        return projector.view.ledger_head()

    def check_in_memory(
        self,
        head: int,
        subject: str,
        purpose: str,
        *,
        party: str = PLATFORM,
        content: str | None = None,
        aspect: str = ALL_ASPECTS,
        model: str | None = None,
    ) -> Decision | None:
        """Answer an "as known now" question from the in-memory index alone, without
        touching the database, or return None when that cannot be done: no index, one
        not built yet, one behind `head`, or an answer that needs the tables.

        `head` is the ledger head read after the question arrived (the HTTP fast lane
        shares one such read among the checks waiting for it): the answer then reflects
        every write committed before the question, as `check` does.
        """
        index = self._ready_index()
        if index is None or index.position < head:
            return None
        question = self.ledger.question(
            subject, purpose, party, content, aspect, None, None, model=model
        )
        try:
            return self.index_answer(index, question, tables=False)
        except _NeedsTables:
            return None

    def _ready_index(self) -> CurrentIndex | None:
        """The projector's in-memory index, when one is kept here and built."""
        index = self.projector.index if self.projector is not None else None
        return index if index is not None and index.ready else None

    def index_answer(
        self, index: CurrentIndex, question: Question, *, tables: bool = True
    ) -> Decision | None:
        """Answer a validated "as known now" question from `index` as it stands (no
        freshness check; None when the tips cannot answer). The contributor rule of
        BRIEF §2.1 applies; a contributor the index cannot answer is asked of the tables
        (with `tables=False`, `_NeedsTables` is raised instead).
        """
        at, known_at = to_micros(question.at), to_micros(question.known_at)
        found = index.evidence(question, keys_of(question), at=at, known_at=known_at)
        if found is None:
            return None
        evidence, registration = found
        owner = resolve(question, evidence, index.terms())
        if not owner.allowed or registration is None:
            return owner

        def ask(asked: Question) -> Decision:
            held = index.evidence(asked, keys_of(asked), at=at, known_at=known_at)
            if held is None:
                if not tables:
                    raise _NeedsTables
                return self._answer_subject(asked, known_at_given=False, tips=True)
            return resolve(asked, held[0], index.terms())

        return with_contributors(question, owner, registration, ask)

    def answer(self, question: Question, *, known_at_given: bool, tips: bool = True) -> Decision:
        """Answer a validated question from the read models as they stand (no waiting).

        `known_at_given` False means "as known now": the answer reflects everything
        projected. `tips` False skips the current tips and asks the timeline (tests use
        it to check both paths). The contributor rule of BRIEF §2.1 applies.
        """
        assert self.projector is not None, "answer() needs read models"
        evidence = self.projector.view.evidence(
            question, known_at_given=known_at_given, tips=tips, with_registration=True
        )
        return self._work(question, evidence, known_at_given, tips=tips)

    def _work(
        self, question: Question, evidence: Evidence, known_at_given: bool, *, tips: bool
    ) -> Decision:
        """Answer from the owner's evidence, then apply the contributor rule."""
        owner = self._resolve(question, evidence)
        registration = (
            registration_from(question.content, *evidence.registration)
            if evidence.registration is not None and question.content is not None
            else None
        )
        return self._contributors(
            question,
            owner,
            known_at_given,
            tips=tips,
            registration=registration,
            looked_up=evidence.registration_read,
        )

    def _answer_subject(self, question: Question, *, known_at_given: bool, tips: bool) -> Decision:
        """Answer by BRIEF §2 alone (no contributors) from the read models."""
        assert self.projector is not None, "answer() needs read models"
        evidence = self.projector.view.evidence(question, known_at_given=known_at_given, tips=tips)
        return self._resolve(question, evidence)

    def _contributors(
        self,
        question: Question,
        owner: Decision,
        known_at_given: bool,
        *,
        tips: bool,
        registration: Registration | None = None,
        looked_up: bool = False,
    ) -> Decision:
        """Apply the contributor rule to the owner's answer (read models only)."""
        if not owner.allowed or question.content is None:
            return owner
        assert self.projector is not None
        if not looked_up:
            registration = self.projector.view.registration(
                question.content, at=to_micros(question.at), known_at=to_micros(question.known_at)
            )
        if registration is None:
            return owner

        def ask(asked: Question) -> Decision:
            return self._answer_subject(asked, known_at_given=known_at_given, tips=tips)

        return with_contributors(question, owner, registration, ask)

    def contributors(
        self, question: Question, owner: Decision, registration: Registration
    ) -> Decision:
        """Apply the contributor rule to an owner's answer "as known now", given the
        content's registration in force (read models only; for batch reads)."""
        return self._contributors(
            question, owner, False, tips=False, registration=registration, looked_up=True
        )

    def _resolve(self, question: Question, evidence: Evidence) -> Decision:
        assert self.projector is not None
        view = self.projector.view
        version = evidence.acceptance.version if evidence.acceptance is not None else None
        return resolve(question, evidence, view.terms(version))

    # ------------------------------------------------------------------- filter

    def filter(
        self,
        purpose: str,
        pairs: Iterable[tuple[str, str]],
        *,
        party: str = PLATFORM,
        at: datetime | None = None,
        known_at: datetime | None = None,
        min_position: int | None = None,
        model: str | None = None,
    ) -> Iterator[tuple[str, str]]:
        """Yield the (subject, content) pairs that `party` may use for `purpose`, in order.

        Streams: reads `pairs` in chunks of FILTER_CHUNK, so memory stays constant.
        Raises InvalidIdentifierError naming the first malformed subject or content.
        """
        base = self.ledger.question(
            "-", purpose, party, None, ALL_ASPECTS, at, known_at, model=model
        )
        self.require_reachable(min_position)
        use_models = self.fresh(min_position)
        chunk: list[tuple[str, str]] = []
        for pair in pairs:
            chunk.append(pair)
            if len(chunk) >= FILTER_CHUNK:
                yield from self._filter_chunk(base, chunk, known_at is not None, use_models)
                chunk = []
        if chunk:
            yield from self._filter_chunk(base, chunk, known_at is not None, use_models)

    def filter_batch(
        self,
        purpose: str,
        pairs: Iterable[tuple[str, str]],
        *,
        party: str = PLATFORM,
        at: datetime | None = None,
        known_at: datetime | None = None,
        min_position: int | None = None,
        model: str | None = None,
    ) -> FilterAnswer:
        """Answer a whole batch (HTTP `POST /v1/filter`): allowed pairs and the position.

        The position is the lowest any chunk of the batch reflected.
        """
        base = self.ledger.question(
            "-", purpose, party, None, ALL_ASPECTS, at, known_at, model=model
        )
        self.require_reachable(min_position)
        use_models = self.fresh(min_position)
        items = list(pairs)
        allowed: list[tuple[str, str]] = []
        positions: list[int] = []
        for start in range(0, len(items), FILTER_CHUNK):
            chunk = items[start : start + FILTER_CHUNK]
            allowed.extend(
                self._filter_chunk(base, chunk, known_at is not None, use_models, positions)
            )
        if not positions:
            positions.append(self._position(base, known_at is not None, use_models))
        return FilterAnswer(allowed, min(positions))

    def _position(self, base: Question, known_at_given: bool, use_models: bool) -> int:
        if use_models:
            return self.answer(base, known_at_given=known_at_given).position
        return self.ledger.ledger_position(base.known_at if known_at_given else None)

    def _filter_chunk(
        self,
        base: Question,
        chunk: list[tuple[str, str]],
        known_at_given: bool,
        use_models: bool,
        positions: list[int] | None = None,
    ) -> Iterator[tuple[str, str]]:
        for subject, content in chunk:
            check_identifier(subject, field="subject")
            check_identifier(content, field="content")
        if not use_models:
            for subject, content in chunk:
                decision = self.ledger.check(
                    subject,
                    base.purpose.name,
                    party=base.party,
                    content=content,
                    at=base.at,
                    known_at=base.known_at if known_at_given else None,
                    model=base.model,
                )
                if positions is not None:
                    positions.append(decision.position)
                if decision.allowed:
                    yield subject, content
            return
        assert self.projector is not None
        view = self.projector.view
        parties = tuple(dict.fromkeys(k.party for k in question_keys(base.party, None, "all")))
        known_at = to_micros(base.known_at)
        tips = view.tips_for_pairs(
            base.purpose.name,
            parties,
            chunk,
            known_at=known_at,
            known_at_given=known_at_given,
            model=base.model,
        )
        if positions is not None:
            positions.append(tips.position)
        current = tips.head_recorded_at is None or tips.head_recorded_at <= known_at
        at = to_micros(base.at)
        registrations = view.registrations(
            list(dict.fromkeys(content for _, content in chunk)), at=at, known_at=known_at
        )
        for subject, content in chunk:
            question = Question(
                subject,
                base.purpose,
                base.party,
                content,
                ALL_ASPECTS,
                base.at,
                base.known_at,
                base.model,
            )
            evidence = pair_evidence(tips, question, at) if current else None
            if evidence is None:
                evidence = view.evidence(question, known_at_given=known_at_given, tips=False)
            version = evidence.acceptance.version if evidence.acceptance is not None else None
            decision = resolve(question, evidence, view.terms(version))
            decision = self._contributors(
                question,
                decision,
                known_at_given,
                tips=False,
                registration=registrations.get(content),
                looked_up=True,
            )
            if decision.allowed:
                yield subject, content


def pair_evidence(
    tips: PairTips, question: Question, at: int, keys: Sequence[Key] | None = None
) -> Evidence | None:
    """Return a pair's evidence from a chunk's tips, or None if the tips cannot answer.

    `keys` are the question's `question_keys` (aspect `all`, its model) when the caller
    has them.
    """
    classes: list[tuple[Fact | None, Fact | None]] = []
    if keys is None:
        keys = question_keys(question.party, question.content, ALL_ASPECTS, question.model)
    for key in keys:
        fact = tips.facts.get((question.subject, key.party, key.scope, key.model))
        if fact is not None and not tip_answers(fact, at):
            return None
        classes.append((fact, fact))
    acceptance = None
    held = tips.acceptances.get(question.subject)
    if held is not None:
        acceptance = Acceptance(*held)
        if not terms_tip_answers(acceptance, at):
            return None
    return Evidence(tuple(classes), acceptance, tips.erasures.get(question.subject), tips.position)
