# long module: one test per refusal of every decider
"""The write rules of BRIEF §2 on the pure deciders: no database, no clock, milliseconds.

Each refusal of "Refused, with nothing written" has a test here: a stateless one is
refused when the command is made, a stateful one by its decider.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from ledger.commands import (
    AcceptTerms,
    Command,
    Erase,
    Expire,
    Grant,
    GrantAuthority,
    PublishTerms,
    Revoke,
    RevokeAuthority,
    Void,
)
from ledger.deciders import DECIDERS, StreamState, WriteState, decide
from ledger.errors import (
    AuthorityNotInForceError,
    EventAlreadyVoidedError,
    EventNotVoidableError,
    InvalidExpiryError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidInstantError,
    InvalidPartyError,
    InvalidTermsError,
    NotAuthorisedError,
    NothingToExpireError,
    OptInDefaultError,
    SubjectErasedError,
    TermsAlreadyPublishedError,
    UnknownAspectError,
    UnknownEventError,
    UnknownPurposeError,
    UnknownTermsVersionError,
)
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    EventVoided,
    LedgerEvent,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
STREAM = UUID(int=1)
TERMS_STREAM = UUID(int=2)


class Stream:
    """A subject's stream built in memory by deciding commands on it, as the pipeline does."""

    def __init__(self, terms: TermsPublished | None = None) -> None:
        self.state = StreamState(STREAM)
        self.terms = terms

    def decide(self, command: Command, now: datetime = NOW) -> LedgerEvent:
        """Decide `command` on the stream; append the event it decides."""
        event = decide(WriteState(self.state, terms=self.terms), command, now)
        self.state.events.append(event)
        return event


def published(version: str = "v1") -> TermsPublished:
    state = WriteState(StreamState(TERMS_STREAM))
    command = PublishTerms(
        version=version,
        effective_from=T0,
        clauses=[{"purpose": "ai-training", "default": "granted"}],
    )
    event = decide(state, command, NOW)
    assert isinstance(event, TermsPublished)
    return event


# ------------------------------------------------------------------- what is decided


def test_a_grant_records_its_words_at_ledger_time_effective_now_by_default() -> None:
    command = Grant(subject="a", purpose="ai-training", party="acme", content_ids=["t2", "t1"])
    event = Stream().decide(command)
    assert isinstance(event, ConsentGranted)
    assert (event.event_id, event.subject, event.purpose, event.party) == (
        command.event_id,
        "a",
        "ai-training",
        "acme",
    )
    assert event.content_ids == ["t1", "t2"]
    assert (event.recorded_at, event.effective_at, event.originator_version) == (NOW, NOW, 1)


def test_commands_to_one_stream_take_the_next_versions_in_order() -> None:
    stream = Stream()
    first = stream.decide(Grant(subject="a", purpose="ai-training"))
    second = stream.decide(Revoke(subject="a", purpose="ai-training", reason="changed mind"))
    assert isinstance(second, ConsentRevoked)
    assert (first.originator_version, second.originator_version) == (1, 2)
    assert second.reason == "changed mind"


def test_a_backfilled_grant_keeps_its_earlier_effective_time() -> None:
    event = Stream().decide(Grant(subject="a", purpose="ai-training", effective_at=T0))
    assert (event.effective_at, event.recorded_at) == (T0, NOW)


def test_evidence_is_left_for_the_pipeline_to_seal() -> None:
    event = Stream().decide(Grant(subject="a", purpose="ai-training", evidence={"ip": "1.2.3.4"}))
    assert isinstance(event, ConsentGranted)
    assert event.evidence == {"ip": "1.2.3.4"}


def test_accepting_published_terms_names_the_version() -> None:
    event = Stream(published("v1")).decide(AcceptTerms(subject="a", version="v1"))
    assert isinstance(event, TermsAccepted)
    assert event.version == "v1"


def test_publishing_terms_normalises_the_clauses() -> None:
    terms = published("v1")
    assert terms.clauses == [{"purpose": "ai-training", "default": "granted"}]
    assert terms.effective_from == T0


def test_a_void_names_the_voided_event_and_its_subject() -> None:
    stream = Stream()
    grant = stream.decide(Grant(subject="a", purpose="ai-training"))
    void = stream.decide(Void(voided_event_id=grant.event_id, reason="wrong artist"))
    assert isinstance(void, EventVoided)
    assert (void.voided_event_id, void.subject, void.reason) == (
        grant.event_id,
        "a",
        "wrong artist",
    )


def test_an_erasure_is_recorded_once() -> None:
    event = Stream().decide(Erase(subject="a", reason="account deleted"))
    assert isinstance(event, SubjectErased)


def test_an_expiry_is_effective_at_the_grant_expiry_and_copies_its_scope() -> None:
    stream = Stream()
    expires = NOW + timedelta(hours=1)
    grant = stream.decide(
        Grant(subject="a", purpose="ai-training", content_ids=["t1"], expires_at=expires)
    )
    later = expires + timedelta(minutes=1)
    event = stream.decide(Expire(subject="a", grant_event_id=grant.event_id), later)
    assert isinstance(event, ConsentExpired)
    assert (event.effective_at, event.recorded_at, event.content_ids) == (expires, later, ["t1"])


def test_every_command_has_a_decider() -> None:
    import inspect

    from ledger import commands

    bases = {commands.Command, commands.SubjectCommand}
    concrete = {
        cls
        for _, cls in inspect.getmembers(commands, inspect.isclass)
        if issubclass(cls, commands.Command)
        and cls not in bases
        and not cls.__name__.startswith("_")
        and cls.__module__ == commands.__name__
    }
    assert {PublishTerms, AcceptTerms, Grant, Revoke, Void, Erase, Expire} <= concrete
    assert set(DECIDERS) == concrete


def test_an_agent_writes_only_under_an_authority_in_force_covering_the_purpose() -> None:
    stream = Stream()
    with pytest.raises(NotAuthorisedError):
        stream.decide(Grant(subject="a", purpose="ai-training", actor="label"))
    stream.decide(GrantAuthority(subject="a", agent="label", purposes=["ai-training"]))
    granted = stream.decide(Grant(subject="a", purpose="ai-training", actor="label"))
    assert isinstance(granted, ConsentGranted)
    assert granted.actor == "label"
    with pytest.raises(NotAuthorisedError):
        stream.decide(Revoke(subject="a", purpose="data-mining", actor="label"))
    stream.decide(RevokeAuthority(subject="a", agent="label"))
    with pytest.raises(AuthorityNotInForceError):
        stream.decide(RevokeAuthority(subject="a", agent="label"))


def test_each_command_names_its_event_before_it_is_decided() -> None:
    assert Grant(subject="a", purpose="x").event_id != Grant(subject="a", purpose="x").event_id


# ------------------------------------------------- refused when the command is made


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Grant(subject="a b", purpose="ai-training"), InvalidIdentifierError),
        (lambda: Grant(subject="a", purpose="ai-training", party="ACME!"), InvalidPartyError),
        (lambda: Grant(subject="a", purpose="ai-training", aspect="smell"), UnknownAspectError),
        (lambda: Revoke(subject="a", purpose="ai-training", aspect="smell"), UnknownAspectError),
        (
            lambda: Grant(subject="a", purpose="ai-training", effective_at=datetime(2025, 1, 1)),
            InvalidInstantError,
        ),
        (
            lambda: Grant(subject="a", purpose="ai-training", expires_at=datetime(2026, 1, 1)),
            InvalidInstantError,
        ),
        (
            lambda: Grant(subject="a", purpose="ai-training", effective_at=NOW, expires_at=NOW),
            InvalidExpiryError,
        ),
        (lambda: Grant(subject="a", purpose="ai-training", content_ids=[]), InvalidInputError),
        (
            lambda: Grant(subject="a", purpose="ai-training", content_ids=["t 1"]),
            InvalidIdentifierError,
        ),
        (lambda: Revoke(subject="a", purpose="ai-training", reason="x" * 2001), InvalidInputError),
        (lambda: Void(voided_event_id=uuid4(), reason=" "), InvalidInputError),
        (lambda: PublishTerms(version="v 1", effective_from=T0), InvalidTermsError),
        (
            lambda: PublishTerms(version="v1", effective_from=datetime(2025, 1, 1)),
            InvalidInstantError,
        ),
        (
            lambda: PublishTerms(
                version="v1",
                effective_from=T0,
                clauses=[{"purpose": "ai-training", "default": "x"}],
            ),
            InvalidTermsError,
        ),
        (
            lambda: PublishTerms(
                version="v1",
                effective_from=T0,
                clauses=[
                    {"purpose": "ai-training", "default": "granted"},
                    {"purpose": "ai-training", "default": "denied"},
                ],
            ),
            InvalidTermsError,
        ),
        (
            lambda: PublishTerms(version="v1", effective_from=T0, document_sha256="ABC"),
            InvalidTermsError,
        ),
        (lambda: AcceptTerms(subject="a", version="v1", evidence=["ip"]), InvalidInputError),  # type: ignore[arg-type]
    ],
    ids=[
        "bad-subject",
        "bad-party",
        "unknown-aspect",
        "unknown-aspect-revocation",
        "zone-less-effective-time",
        "zone-less-expiry",
        "expiry-not-after-effective-time",
        "empty-content-list",
        "bad-content-id",
        "reason-too-long",
        "void-without-reason",
        "bad-terms-version",
        "zone-less-terms-start",
        "bad-clause-default",
        "clause-twice",
        "bad-document-hash",
        "evidence-not-an-object",
    ],
)
def test_malformed_input_is_refused_when_the_command_is_made(
    make: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        make()  # type: ignore[operator]


# --------------------------------------------------------- refused by the deciders


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(UnknownPurposeError):
        Stream().decide(Grant(subject="a", purpose="astrology"))
    with pytest.raises(UnknownPurposeError):
        Stream().decide(Revoke(subject="a", purpose="astrology"))


def test_an_expiry_not_after_the_recording_time_is_refused_when_effective_at_is_absent() -> None:
    with pytest.raises(InvalidExpiryError):
        Stream().decide(Grant(subject="a", purpose="ai-training", expires_at=NOW))


def test_accepting_unpublished_terms_is_refused() -> None:
    with pytest.raises(UnknownTermsVersionError):
        Stream().decide(AcceptTerms(subject="a", version="v9"))


def test_publishing_a_version_twice_is_refused() -> None:
    state = WriteState(StreamState(TERMS_STREAM, [published("v1")]))
    with pytest.raises(TermsAlreadyPublishedError):
        decide(state, PublishTerms(version="v1", effective_from=T0), NOW)


def test_terms_defaulting_an_opt_in_purpose_to_granted_are_refused() -> None:
    command = PublishTerms(
        version="v1",
        effective_from=T0,
        clauses=[{"purpose": "ai-generative-training", "default": "granted"}],
    )
    with pytest.raises(OptInDefaultError):
        decide(WriteState(StreamState(TERMS_STREAM)), command, NOW)


def test_terms_naming_an_unknown_purpose_are_refused() -> None:
    command = PublishTerms(
        version="v1", effective_from=T0, clauses=[{"purpose": "astrology", "default": "denied"}]
    )
    with pytest.raises(UnknownPurposeError):
        decide(WriteState(StreamState(TERMS_STREAM)), command, NOW)


def test_voiding_an_unknown_event_is_refused() -> None:
    with pytest.raises(UnknownEventError):
        Stream().decide(Void(voided_event_id=uuid4(), reason="no such event"))


def test_voiding_an_already_voided_event_is_refused() -> None:
    stream = Stream()
    grant = stream.decide(Grant(subject="a", purpose="ai-training"))
    stream.decide(Void(voided_event_id=grant.event_id, reason="first"))
    with pytest.raises(EventAlreadyVoidedError):
        stream.decide(Void(voided_event_id=grant.event_id, reason="second"))


@pytest.mark.parametrize("kind", ["void", "erasure"])
def test_voiding_an_event_that_is_not_a_grant_revocation_or_acceptance_is_refused(
    kind: str,
) -> None:
    stream = Stream()
    target = stream.decide(Grant(subject="a", purpose="ai-training"))
    if kind == "void":
        target = stream.decide(Void(voided_event_id=target.event_id, reason="first"))
    else:
        target = stream.decide(Erase(subject="a"))
    with pytest.raises(EventNotVoidableError):
        stream.decide(Void(voided_event_id=target.event_id, reason="again"))


def test_voiding_published_terms_is_refused() -> None:
    terms = published("v1")
    state = WriteState(StreamState(TERMS_STREAM, [terms]))
    with pytest.raises(EventNotVoidableError):
        decide(state, Void(voided_event_id=terms.event_id, reason="no"), NOW)


@pytest.mark.parametrize(
    "command",
    [
        AcceptTerms(subject="a", version="v1"),
        Grant(subject="a", purpose="ai-training"),
        Revoke(subject="a", purpose="ai-training"),
        Erase(subject="a"),
    ],
    ids=["acceptance", "grant", "revocation", "erasure"],
)
def test_any_write_about_an_erased_subject_is_refused(command: Command) -> None:
    stream = Stream(published("v1"))
    stream.decide(Erase(subject="a"))
    with pytest.raises(SubjectErasedError):
        stream.decide(command)


def test_voiding_an_event_of_an_erased_subject_is_refused() -> None:
    stream = Stream()
    grant = stream.decide(Grant(subject="a", purpose="ai-training"))
    stream.decide(Erase(subject="a"))
    with pytest.raises(SubjectErasedError):
        stream.decide(Void(voided_event_id=grant.event_id, reason="too late"))


def test_a_refused_command_leaves_the_stream_as_it_was() -> None:
    stream = Stream()
    stream.decide(Erase(subject="a"))
    with pytest.raises(SubjectErasedError):
        stream.decide(Grant(subject="a", purpose="ai-training"))
    assert [type(e) for e in stream.state.events] == [SubjectErased]


@pytest.mark.parametrize("case", ["not-due", "twice", "voided", "no-expiry", "unknown"])
def test_an_expiry_that_is_not_due_is_refused(case: str) -> None:
    stream = Stream()
    expires = NOW + timedelta(hours=1)
    later = expires + timedelta(hours=1)
    grant = stream.decide(
        Grant(
            subject="a", purpose="ai-training", expires_at=None if case == "no-expiry" else expires
        )
    )
    grant_id = uuid4() if case == "unknown" else grant.event_id
    if case == "twice":
        stream.decide(Expire(subject="a", grant_event_id=grant_id), later)
    if case == "voided":
        stream.decide(Void(voided_event_id=grant_id, reason="entered in error"))
    with pytest.raises(NothingToExpireError):
        stream.decide(
            Expire(subject="a", grant_event_id=grant_id), NOW if case == "not-due" else later
        )
