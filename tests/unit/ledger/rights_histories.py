"""Random multi-subject ledgers for the §2.1 property tests: models, conditions,
works with contributors, agents; events built directly, in ledger order, no store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import strategies as st

from ledger.decisions import Decision, Question, decide
from ledger.events import (
    AuthorityGranted,
    AuthorityRevoked,
    ConsentGranted,
    ConsentRevoked,
    ContentRegistered,
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
from ledger.vocabulary import Vocabulary
from tests.unit.ledger.reference_rules import Answer, Ask

VOCABULARY = Vocabulary()
BASE = datetime(2024, 1, 1, tzinfo=UTC)
SUBJECTS = ["owner", "singer", "writer"]
PURPOSES = ["ai-training", "ai-training", "ai-generative-training"]
PARTIES = ["platform", "platform", "*", "aurora-labs"]
CONTENTS = [None, ["t1"], ["t2"], ["t1", "t2"]]
ASPECTS = ["all", "voice", "music"]
MODELS = [None, None, "m1", "m2"]
CONDITIONS = [None, None, ["attribution"], ["no-voice-clone", "credit"]]
DAYS = st.integers(min_value=0, max_value=400)


def day(n: int) -> datetime:
    """Return the instant `n` days after the histories' base."""
    return BASE + timedelta(days=n)


@dataclass
class RightsLedger:
    """Every subject's events in ledger order, one second apart in ledger time."""

    entries: list[Entry] = field(default_factory=list)
    terms: dict[str, TermsPublished] = field(default_factory=dict)
    clock: datetime = BASE - timedelta(days=30)
    versions: dict[str, int] = field(default_factory=dict)

    def _add(self, event: LedgerEvent) -> UUID:
        self.entries.append(Entry(len(self.entries) + 1, event))
        return event.event_id

    def _base(self, subject: str, effective: datetime | None) -> dict[str, Any]:
        self.clock += timedelta(seconds=1)
        self.versions[subject] = self.versions.get(subject, 0) + 1
        return {
            "originator_id": subject_stream_id(subject),
            "originator_version": self.versions[subject],
            "timestamp": self.clock,
            "event_id": uuid4(),
            "effective_at": effective or self.clock,
            "subject": subject,
        }

    def publish(self, version: str, effective_from: datetime, **defaults: str) -> None:
        """Publish terms with `purpose=default` clauses (underscores become hyphens)."""
        self.clock += timedelta(seconds=1)
        event = TermsPublished(
            originator_id=terms_stream_id(version),
            originator_version=1,
            timestamp=self.clock,
            event_id=uuid4(),
            effective_at=self.clock,
            version=version,
            effective_from=effective_from,
            clauses=[{"purpose": p.replace("_", "-"), "default": d} for p, d in defaults.items()],
            document_sha256=None,
        )
        self.terms[version] = event
        self._add(event)

    def erased(self, subject: str) -> bool:
        """Tell whether `subject` has been erased."""
        return any(
            isinstance(e.event, SubjectErased) and e.event.subject == subject for e in self.entries
        )

    def apply(self, step: tuple[Any, ...]) -> None:
        """Record one generated step (see `STEP`); writes about an erased subject are skipped."""
        kind, subject = step[0], step[1]
        if self.erased(subject):
            return
        if kind == "accept":
            self._add(
                TermsAccepted(version=step[2], evidence=None, **self._base(subject, day(step[3])))
            )
        elif kind == "grant":
            _, _, purpose, party, content, aspect, model, conditions, start, length = step
            self._add(
                ConsentGranted(
                    purpose=purpose,
                    party=party,
                    content_ids=content,
                    aspect=aspect,
                    expires_at=day(start + length) if length else None,
                    evidence=None,
                    model=model,
                    conditions=conditions,
                    **self._base(subject, day(start)),
                )
            )
        elif kind == "revoke":
            _, _, purpose, party, content, aspect, model, start = step
            self._add(
                ConsentRevoked(
                    purpose=purpose,
                    party=party,
                    content_ids=content,
                    aspect=aspect,
                    reason=None,
                    evidence=None,
                    model=model,
                    **self._base(subject, day(start)),
                )
            )
        elif kind == "register":
            _, _, content, contributors, start = step
            if any(
                isinstance(e.event, ContentRegistered)
                and e.event.content_id == content
                and e.event.subject != subject
                for e in self.entries
            ):
                return  # the owner is fixed by the first registration
            named = [
                {"subject": s, "aspects": list(a)}
                for s, a in dict(contributors).items()
                if s != subject
            ]
            self._add(
                ContentRegistered(
                    content_id=content,
                    contributors=named,
                    isrc=None,
                    iswc=None,
                    **self._base(subject, day(start)),
                )
            )
        elif kind == "authority":
            self._add(
                AuthorityGranted(
                    agent="label-1",
                    purposes=None,
                    expires_at=None,
                    **self._base(subject, None),
                )
            )
        elif kind == "deauthorise":
            self._add(AuthorityRevoked(agent="label-1", **self._base(subject, None)))
        elif kind == "void":
            voidable = [
                e
                for e in self.entries
                if isinstance(
                    e.event, TermsAccepted | ConsentGranted | ConsentRevoked | ContentRegistered
                )
                and e.event.subject == subject
            ]
            done = {
                e.event.voided_event_id for e in self.entries if isinstance(e.event, EventVoided)
            }
            open_ = [e for e in voidable if e.event.event_id not in done]
            if open_:
                target = open_[step[2] % len(open_)].event.event_id
                self._add(
                    EventVoided(voided_event_id=target, reason="error", **self._base(subject, None))
                )
        elif kind == "erase" and step[2] == 0:
            self._add(SubjectErased(reason=None, **self._base(subject, None)))

    def history(self, subject: str) -> list[Entry]:
        """Return one subject's entries."""
        return [
            e
            for e in self.entries
            if isinstance(e.event, SubjectEvent) and e.event.subject == subject
        ]

    def position(self, known_at: datetime) -> int:
        """Return the highest position recorded by `known_at`."""
        return max((e.position for e in self.entries if e.event.recorded_at <= known_at), default=0)

    def decide(self, ask: Ask) -> Decision:
        """Answer by the product's replay, `ledger.decisions.decide`."""
        question = Question(
            ask.subject,
            VOCABULARY.purpose(ask.purpose),
            ask.party,
            ask.content,
            ask.aspect,
            ask.at,
            ask.known_at,
            ask.model,
        )
        return decide(
            self.history(ask.subject),
            self.terms,
            question,
            self.position(ask.known_at),
            self.history,
        )


def build(steps: list[tuple[Any, ...]]) -> RightsLedger:
    """Return a ledger with two terms versions and the generated steps."""
    ledger = RightsLedger()
    ledger.publish("v1", BASE, ai_training="granted")
    ledger.publish("v2", day(200), ai_training="denied")
    for step in steps:
        ledger.apply(step)
    return ledger


def as_answer(decision: Decision) -> Answer:
    """Return a product decision in the reference's shape."""
    return Answer(
        decision.allowed,
        decision.basis.value,
        decision.event_ids,
        decision.terms_version,
        decision.position,
        decision.conditions,
        decision.contributor,
        decision.contributor_basis.value if decision.contributor_basis else None,
    )


SUBJECT = st.sampled_from(SUBJECTS)
GRANT = st.tuples(
    st.just("grant"),
    SUBJECT,
    st.sampled_from(PURPOSES),
    st.sampled_from(PARTIES),
    st.sampled_from(CONTENTS),
    st.sampled_from(ASPECTS),
    st.sampled_from(MODELS),
    st.sampled_from(CONDITIONS),
    DAYS,
    st.none() | st.integers(min_value=1, max_value=200),
)
REGISTER = st.tuples(
    st.just("register"),
    SUBJECT,
    st.sampled_from(["t1", "t2"]),
    st.lists(
        st.tuples(
            SUBJECT,
            st.lists(st.sampled_from(["music", "voice", "likeness"]), min_size=1, unique=True),
        ),
        max_size=2,
        unique_by=lambda c: c[0],
    ),
    DAYS,
)
STEP = st.one_of(
    GRANT,
    GRANT,
    GRANT,
    st.tuples(st.just("accept"), SUBJECT, st.sampled_from(["v1", "v1", "v2"]), DAYS),
    st.tuples(st.just("accept"), SUBJECT, st.sampled_from(["v1", "v2"]), DAYS),
    st.tuples(
        st.just("grant"),
        SUBJECT,
        st.sampled_from(PURPOSES),
        st.sampled_from(PARTIES),
        st.sampled_from(CONTENTS),
        st.sampled_from(ASPECTS),
        st.sampled_from(MODELS),
        st.sampled_from(CONDITIONS),
        DAYS,
        st.none() | st.integers(min_value=1, max_value=200),
    ),
    st.tuples(
        st.just("revoke"),
        SUBJECT,
        st.sampled_from(PURPOSES),
        st.sampled_from(PARTIES),
        st.sampled_from(CONTENTS),
        st.sampled_from(ASPECTS),
        st.sampled_from(MODELS),
        DAYS,
    ),
    REGISTER,
    REGISTER,
    st.tuples(st.just("authority"), SUBJECT),
    st.tuples(st.just("deauthorise"), SUBJECT),
    st.tuples(st.just("void"), SUBJECT, st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("erase"), SUBJECT, st.integers(min_value=0, max_value=5)),
)
ASK = st.builds(
    Ask,
    subject=st.sampled_from(["owner", "owner", "singer", "writer"]),
    purpose=st.sampled_from(PURPOSES),
    party=st.sampled_from(PARTIES),
    content=st.sampled_from([None, "t1", "t1", "t2", "t3"]),
    aspect=st.sampled_from(["all", "all", "voice", "music", "likeness"]),
    model=st.sampled_from([None, "m1", "m2"]),
    at=st.integers(min_value=100, max_value=500).map(day),
    known_at=st.one_of(
        st.just(BASE + timedelta(days=10_000)),
        # within the ledger's recording, to exercise voids and registrations known later
        st.integers(min_value=0, max_value=60).map(lambda k: BASE - timedelta(days=30, seconds=-k)),
    ),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], Ask]:
    """Draw steps and a question, half the time about one of the steps' own scopes
    (so that explicit events decide often enough to exercise every rule).
    """
    steps = draw(st.lists(STEP, min_size=8, max_size=24))
    ask = draw(ASK)
    explicit = [s for s in steps if s[0] in ("grant", "revoke")]
    about_a_step: bool = draw(st.booleans())
    if explicit and about_a_step:
        chosen = draw(st.sampled_from(explicit))
        content = chosen[4][0] if chosen[4] else draw(st.sampled_from([None, "t1"]))
        ask = replace(
            ask,
            subject=chosen[1],
            purpose=chosen[2],
            party=chosen[3],
            content=content,
            aspect=chosen[5],
            model=chosen[6],
        )
    return steps, ask
