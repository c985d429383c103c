"""The decisions the signals follow (party `*`, aspect `all`, now), read in bulk.

Two reads, both from the read models through the `PermissionReader` (replay when they
cannot be brought up to date):
- `SignalSource.pages`: decisions of every signal purpose for a batch of pages (one
  statement per chunk of pages), for the per-content route and the bulk lookup;
- `SignalSource.catalogues`: every subject that has a fact for `*`, in subject order,
  with the signals of its catalogue and of each content it has a fact about, for the
  site-wide files. Pages of tips are read one at a time, so memory stays flat.

Every answer is `projections.permissions.resolve`'s, the rule as the reader applies it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ledger.decisions import Decision, Question, question_keys
from ledger.vocabulary import ALL_ASPECTS, ANY_THIRD_PARTY
from projections.permissions import resolve, tip_row_answers
from projections.reader import PermissionReader, pair_evidence
from projections.signals.content import ContentSignals, SignalRenderer, state_of
from projections.signals.urls import Page
from projections.signals.vocabularies import State
from projections.timeline import CATALOGUE, Evidence, Fact, to_micros

CHUNK: Final = 500  # pages per statement
SCAN_PAGE: Final = 20_000  # tips per statement of a scan
_NO_EVENT: Final = "0" * 32
_CONDITIONED: Final = 16  # added to a tip's kind when the grant carries conditions
_SOME_CONDITIONS: Final = '["conditions"]'


@dataclass(frozen=True)
class PageAnswer:
    """The decisions of every signal purpose for one page, and its signals."""

    page: Page
    decisions: dict[str, Decision]
    signals: ContentSignals


@dataclass(frozen=True)
class CatalogueSignals:
    """A subject with facts for `*`: its catalogue's signals and its contents' signals."""

    subject: str
    catalogue: ContentSignals
    contents: list[tuple[str, ContentSignals]]  # content ids with a fact, in id order


class SignalSource:
    """Read the decisions that the AI signals follow, for pages or for the whole site."""

    def __init__(self, reader: PermissionReader, renderer: SignalRenderer) -> None:
        self.reader = reader
        self.renderer = renderer
        self.ledger = reader.ledger
        self._purposes = [self.ledger.vocabulary.purpose(p) for p in renderer.purposes]
        self._memo: dict[tuple[str, bool, int | None, int | None], State] = {}
        self._pages_memo: dict[tuple[Any, ...], ContentSignals] = {}
        self._contributed: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ pages

    def pages(
        self, pages: Sequence[Page], *, min_position: int | None = None
    ) -> tuple[list[PageAnswer], int]:
        """Answer every page, in order; return the answers and the lowest position read."""
        use_models = self.reader.fresh(min_position)
        answers: list[PageAnswer] = []
        positions: list[int] = []
        for start in range(0, len(pages), CHUNK):
            chunk = pages[start : start + CHUNK]
            if use_models:
                answers.extend(self._chunk(chunk, positions))
            else:
                answers.extend(self._replayed(chunk, positions))
        if not positions:
            positions.append(self.ledger.ledger_position())
        return answers, min(positions)

    def page(self, page: Page, *, min_position: int | None = None) -> PageAnswer:
        """Answer one page."""
        return self.pages([page], min_position=min_position)[0][0]

    def _answer(self, page: Page, decisions: dict[str, Decision]) -> PageAnswer:
        return PageAnswer(page, decisions, self.renderer.decide(decisions))

    def _replayed(self, chunk: Sequence[Page], positions: list[int]) -> Iterator[PageAnswer]:
        for page in chunk:
            decisions = {
                p.name: self.ledger.check(
                    page.subject, p.name, party=ANY_THIRD_PARTY, content=page.content
                )
                for p in self._purposes
            }
            positions.extend(d.position for d in decisions.values())
            yield self._answer(page, decisions)

    def _chunk(self, chunk: Sequence[Page], positions: list[int]) -> Iterator[PageAnswer]:
        assert self.reader.projector is not None
        view = self.reader.projector.view
        now = self.ledger.clock.now()
        at = to_micros(now)
        tips = view.tips_for_purposes(
            [p.name for p in self._purposes],
            (ANY_THIRD_PARTY,),
            [(page.subject, page.content) for page in chunk],
            known_at=at,
            known_at_given=False,
        )
        head = next(iter(tips.values()))
        positions.append(head.position)
        current = head.head_recorded_at is None or head.head_recorded_at <= at
        # `resolve` reads the question's purpose, party and instants, never its subject or
        # content: within a chunk its answer is a function of (purpose, evidence), and most
        # pages share their evidence (no fact of their own), so it is memoised by them.
        resolved: dict[tuple[str, Evidence], Decision] = {}
        contents = list(dict.fromkeys(p.content for p in chunk if p.content is not None))
        registrations = view.registrations(contents, at=at, known_at=at)
        first = self._purposes[0]
        names = [p.name for p in self._purposes]
        shared = tips[first.name]
        # A page's answer is a function of the tips it reads; most pages of a chunk read
        # the same ones (none of their own), so whole answers are memoised by those tips.
        pages_seen: dict[tuple[Any, ...], PageAnswer] = {}
        for page in chunk:
            keys = question_keys(ANY_THIRD_PARTY, page.content, ALL_ASPECTS)
            facts = tuple(
                tips[n].facts.get((page.subject, k.party, k.scope, k.model))
                for n in names
                for k in keys
            )
            read = (facts, shared.acceptances.get(page.subject), shared.erasures.get(page.subject))
            registration = registrations.get(page.content) if page.content else None
            seen = pages_seen.get(read) if current and registration is None else None
            if seen is not None:
                yield PageAnswer(page, seen.decisions, seen.signals)
                continue
            # pair_evidence reads the subject, party and content, not the purpose.
            probe = Question(
                page.subject, first, ANY_THIRD_PARTY, page.content, ALL_ASPECTS, now, now
            )
            decisions: dict[str, Decision] = {}
            from_tips = current
            for purpose in self._purposes:
                evidence = pair_evidence(tips[purpose.name], probe, at, keys) if current else None
                decision = resolved.get((purpose.name, evidence)) if evidence else None
                if decision is None:
                    question = Question(
                        page.subject, purpose, ANY_THIRD_PARTY, page.content, ALL_ASPECTS, now, now
                    )
                    if evidence is None:
                        from_tips = False
                        evidence = view.evidence(question, known_at_given=False, tips=False)
                    version = evidence.acceptance.version if evidence.acceptance else None
                    decision = resolve(question, evidence, view.terms(version))
                    resolved[(purpose.name, evidence)] = decision
                if registration is not None:  # the contributors are asked too (BRIEF §2.1)
                    decision = self.reader.contributors(
                        Question(
                            page.subject, purpose, ANY_THIRD_PARTY, page.content, ALL_ASPECTS,
                            now, now,
                        ),
                        decision,
                        registration,
                    )  # fmt: skip
                decisions[purpose.name] = decision
            answer = self._answer(page, decisions)
            if from_tips and registration is None:
                pages_seen[read] = answer
            yield answer

    # ------------------------------------------------------------ whole site

    def default(self) -> ContentSignals:
        """Return the signals of a catalogue without any fact for `*`: the site's default."""
        now = self.ledger.clock.now()
        return self.renderer.render(
            {p.name: self._state(p.name, now, False, None, None) for p in self._purposes}
        )

    def catalogues(self) -> Iterator[CatalogueSignals]:
        """Yield every subject with a fact for `*` (aspect `all`), in subject order.

        Reads the read models as they stand once brought up to date (replaying a subject
        whose tips cannot answer now: a fact effective later, or an expired grant).
        """
        self.reader.fresh()
        names = [p.name for p in self._purposes]
        assert self.reader.projector is not None
        view = self.reader.projector.view
        now = self.ledger.clock.now()
        at = to_micros(now)
        self._contributed = view.contributed_contents(at=at)
        after: tuple[str, str, str] | None = None
        subject: str | None = None
        rows: list[tuple[Any, ...]] = []
        while True:
            page = view.scan_tips(names, ANY_THIRD_PARTY, after=after, limit=SCAN_PAGE)
            for row in page:
                if row[0] != subject:
                    if subject is not None:
                        yield self._catalogue(subject, rows, now, at)
                    subject, rows = str(row[0]), []
                rows.append(row)
            if len(page) < SCAN_PAGE:
                break
            last = page[-1]
            after = (str(last[0]), str(last[1]), str(last[2]))
        if subject is not None:
            yield self._catalogue(subject, rows, now, at)

    def _catalogue(
        self, subject: str, rows: list[tuple[Any, ...]], now: datetime, at: int
    ) -> CatalogueSignals:
        kinds: dict[tuple[str, str], int] = {}
        erased = False
        if subject in self._contributed:  # its contributors are asked too (BRIEF §2.1)
            return self._replayed_catalogue(subject, rows, self._contributed[subject])
        for row in rows:
            if not tip_row_answers(row[3], row[5], row[7], at):
                return self._replayed_catalogue(subject, rows)
            kinds[(row[1], row[2])] = row[3] + (_CONDITIONED if row[9] else 0)
            erased = erased or row[8] is not None
        purposes = self.renderer.purposes
        whole = tuple(kinds.get((p, CATALOGUE)) for p in purposes)
        catalogue = self._signals(now, erased, None, whole)
        contents = []
        for content in sorted({scope for _, scope in kinds if scope != CATALOGUE}):
            own = tuple(kinds.get((p, content)) for p in purposes)
            contents.append((content, self._signals(now, erased, own, whole)))
        return CatalogueSignals(subject, catalogue, contents)

    def _signals(
        self,
        now: datetime,
        erased: bool,
        own: tuple[int | None, ...] | None,
        whole: tuple[int | None, ...],
    ) -> ContentSignals:
        """Return the signals of a page from the kinds of its tips, per purpose (memoised)."""
        key = (erased, own, whole)
        found = self._pages_memo.get(key)
        if found is None:
            states = {}
            for index, name in enumerate(self.renderer.purposes):
                mine = own[index] if own is not None else None
                states[name] = self._state(name, now, erased, mine, whole[index])
            found = self._pages_memo[key] = self.renderer.render(states)
        return found

    def _replayed_catalogue(
        self, subject: str, rows: list[tuple[Any, ...]], also: Sequence[str] = ()
    ) -> CatalogueSignals:
        """Answer a subject's pages one by one: its catalogue, each content it has a fact
        about, and the contents in `also` (registered with contributors)."""
        scopes = sorted(({str(row[2]) for row in rows} | set(also)) - {CATALOGUE})
        answers, _ = self.pages([Page(subject, None), *(Page(subject, c) for c in scopes)])
        return CatalogueSignals(
            subject, answers[0].signals, [(a.page.content or "", a.signals) for a in answers[1:]]
        )

    def _state(
        self, purpose: str, now: datetime, erased: bool, own: int | None, whole: int | None
    ) -> State:
        """Return the state `resolve` gives party `*` from the kinds of a page's tips.

        Requires tips that answer now (`tip_row_answers`): `own` is the kind of the
        content's own tip (None: none, or a catalogue question), `whole` the catalogue's.
        For `*` the answer is a function of the erasure and these kinds alone (no terms
        apply to a third party), so it is memoised by them: a million catalogues cost a
        few `resolve` calls.
        """
        key = (purpose, erased, own, whole)
        found = self._memo.get(key)
        if found is None:
            question = Question(
                "-", self.ledger.vocabulary.purpose(purpose), ANY_THIRD_PARTY, "-",
                ALL_ASPECTS, now, now,
            )  # fmt: skip
            classes = tuple((f, f) for f in (_like(own), _like(whole)))
            evidence = Evidence(classes, None, _NO_EVENT if erased else None, 0)
            found = self._memo[key] = state_of(resolve(question, evidence, {}))
        return found


def _like(kind: int | None) -> Fact | None:
    """Return a fact of this kind, standing for every answering tip of that kind (a kind
    plus _CONDITIONED: a grant with conditions, BRIEF §2.1)."""
    if kind is None:
        return None
    if kind >= _CONDITIONED:
        return Fact(kind - _CONDITIONED, _NO_EVENT, 0, 0, None, _SOME_CONDITIONS)
    return Fact(kind, _NO_EVENT, 0, 0, None)
