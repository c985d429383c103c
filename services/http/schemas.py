"""The HTTP API's bodies, in the CLI's words (BRIEF §4), and the parsing of their values.

Request bodies refuse unknown fields: a misspelt `content_ids` must not silently widen a
grant to the whole catalogue. Vocabulary words (purpose, aspect, party) are strings here
and are checked by the ledger, whose errors name the known values; `create_app`
documents the deployment's purposes as an enum in the OpenAPI schema. Identifiers follow
the ledger's one rule, whose pattern the schema publishes.

Times are pydantic `AwareDatetime`s, parsed by the ledger's own rule
(`ledger.instants.parse_instant`): ISO 8601 with `Z` or an offset, a bare date meaning
midnight UTC; a time without a zone, or beyond the years 1-9999 in UTC, is a 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from ledger.errors import InvalidInstantError, LedgerError
from ledger.instants import parse_instant
from ledger.vocabulary import IDENTIFIER_PATTERN, PARTY_PATTERN, Basis, check_identifier

MAX_FILTER_ITEMS: Final = 100_000
MAX_POSITION: Final = 2**63 - 1
MODEL_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ACTOR: Final = "Who acts: the subject (default) or an agent with authority in force (§2.1)."
TIME_DESCRIPTION: Final = "ISO 8601 with `Z` or an offset; a bare date means midnight UTC."
TIME_EXAMPLES: Final = ["2025-05-14T12:00:00Z"]

__all__ = ["IDENTIFIER_PATTERN", "PARTY_PATTERN"]  # re-exported: the routes' parameters


def identifier(value: str, *, field: str) -> str:
    """Return a subject or content id if the ledger's identifier rule accepts it.

    Raises InvalidIdentifierError otherwise (the same rule the CLI applies).
    """
    return check_identifier(value, field=field)


INSTANT_ERROR: Final = "invalid_instant"
"""The pydantic error type of a time the ledger's rule refuses (answered as "Invalid time")."""


def _ledger_instant(value: object) -> object:
    """Parse a time by the ledger's rule before pydantic checks it is aware.

    A string goes through `parse_instant` (so a bare date is midnight UTC and a zone-less
    time is refused with the ledger's words); a datetime is left to `AwareDatetime`;
    anything else is refused.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):  # AwareDatetime alone would take a number as Unix time
        raise ValueError("want an ISO 8601 string, e.g. 2025-05-14T12:00:00Z")
    try:
        parsed = parse_instant(value, field="time")
        parsed.astimezone(UTC)  # an offset may push it past the years 1-9999
    except LedgerError as error:
        detail = error.detail.split(": ", 1)[-1]
        raise PydanticCustomError(INSTANT_ERROR, "{detail}", {"detail": detail}) from None
    except OverflowError:
        detail = f"{value!r} lies outside the years 1-9999"
        raise PydanticCustomError(INSTANT_ERROR, "{detail}", {"detail": detail}) from None
    return parsed


Instant = Annotated[AwareDatetime, BeforeValidator(_ledger_instant)]
"""A time of a request: ISO 8601 with a zone, or a bare date (midnight UTC)."""


def instant(value: datetime | str | None, *, field: str) -> datetime | None:
    """Return the UTC instant a request's time names, or None for None.

    Takes an `Instant` already validated by the schema, or an ISO 8601 string. Raises
    InvalidInstantError for a malformed or zone-less time, or one whose UTC equivalent
    lies outside the years 1-9999.
    """
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return parse_instant(value, field=field)
    except OverflowError:
        raise InvalidInstantError(f"{field}: {value!r} lies outside the years 1-9999") from None


def _time(description: str) -> Any:
    return Field(None, description=f"{description} {TIME_DESCRIPTION}", examples=TIME_EXAMPLES)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests


class Clause(_Body):
    """A terms clause: the first party's default for one purpose."""

    purpose: str = Field(description="A purpose of the vocabulary.")
    default: Literal["granted", "denied"]


class TermsRequest(_Body):
    """Publish a terms version (`consent-ledger terms publish`)."""

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", examples=["2025-05"])
    effective_from: Instant = Field(description=TIME_DESCRIPTION, examples=TIME_EXAMPLES)
    clauses: list[Clause] = Field(default_factory=list)
    document_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class Evidence(BaseModel):
    """How a choice was made. `channel`, `method` and `notice_id` are kept in the clear;
    every other field is personal data, sealed with the subject's key."""

    model_config = ConfigDict(extra="allow")

    channel: str | None = None
    method: str | None = None
    notice_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    email: str | None = None
    name: str | None = None
    note: str | None = None

    def as_mapping(self) -> dict[str, Any]:
        """Return the fields that were given (unset ones left out)."""
        return self.model_dump(exclude_unset=True)


class AcceptanceRequest(_Body):
    """Record a terms acceptance (`consent-ledger terms accept`)."""

    version: str
    effective_at: Instant | None = _time("When the subject accepted; default now.")
    evidence: Evidence | None = None
    actor: str | None = Field(None, description=_ACTOR)


class _ScopedRequest(_Body):
    purpose: str = Field(description="A purpose of the vocabulary.")
    party: str | None = Field(
        None,
        description="`platform` (default), a third party, or `*` (any third party).",
        json_schema_extra={"pattern": PARTY_PATTERN},
    )
    content_ids: list[str] | None = Field(
        None,
        min_length=1,
        description="Content ids; absent: the whole catalogue, present and future.",
    )
    aspect: str | None = Field(None, description="`music`, `voice`, `likeness` or `all` (default).")
    effective_at: Instant | None = _time("When it takes effect in the world; default now.")
    evidence: Evidence | None = None
    model: str | None = Field(
        None,
        description="A model name: the event covers only questions naming it (BRIEF §2.1).",
        json_schema_extra={"pattern": MODEL_PATTERN},
    )
    actor: str | None = Field(None, description=_ACTOR)


class GrantRequest(_ScopedRequest):
    """Record a grant (`consent-ledger grant`)."""

    expires_at: Instant | None = _time("When the grant stops applying (exclusive).")
    conditions: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None, description="Conditions of the grant, listed by the answers it decides."
    )


class Contributor(_Body):
    """A contributor of a work and the aspects it holds."""

    subject: str = Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
    aspects: list[str] = Field(min_length=1, description="Among `music`, `voice`, `likeness`.")


class RegistrationRequest(_Body):
    """Register a content (`consent-ledger content register`)."""

    owner: str = Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
    contributors: list[Contributor] = Field(default_factory=list)
    isrc: str | None = Field(None, description="ISO 3901, e.g. `US-S1Z-99-00001`.")
    iswc: str | None = Field(None, description="ISO 15707, e.g. `T-034.524.680-1`.")
    effective_at: Instant | None = _time("When the registration takes effect; default now.")


class AuthorityRequest(_Body):
    """Let an agent act for a subject (`consent-ledger authority grant`)."""

    agent: str = Field(json_schema_extra={"pattern": MODEL_PATTERN})
    purposes: list[str] | None = Field(None, description="Purposes it may act for; null: all.")
    expires_at: Instant | None = _time("When the authority ends (exclusive).")


class ContentBody(BaseModel):
    """A registered content: its id, owner and identifiers."""

    content_id: str
    owner: str
    isrc: str | None
    iswc: str | None


class RevocationRequest(_ScopedRequest):
    """Record a revocation (`consent-ledger revoke`)."""

    reason: str | None = Field(None, max_length=2000)


class VoidRequest(_Body):
    """Void an event entered in error (`consent-ledger void`)."""

    reason: str = Field(min_length=1, max_length=2000)


class ErasureRequest(_Body):
    """Erase a subject's personal data (`consent-ledger erase`)."""

    reason: str | None = Field(None, max_length=2000)


class FilterItem(TypedDict):
    """One (subject, content) pair of a batch (a TypedDict: 100k of them parse fast)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    subject: Annotated[str, Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})]
    content: Annotated[str, Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})]


class FilterRequest(_Body):
    """Ask which of many (subject, content) pairs a party may use for a purpose."""

    purpose: str = Field(description="A purpose of the vocabulary.")
    party: str | None = Field(None, json_schema_extra={"pattern": PARTY_PATTERN})
    at: Instant | None = _time("Effective instant; default now.")
    known_at: Instant | None = _time("Ledger instant; default now.")
    min_position: int | None = Field(
        None, ge=0, le=MAX_POSITION, description="Reflect at least this write's position."
    )
    model: str | None = Field(None, json_schema_extra={"pattern": MODEL_PATTERN})
    items: list[FilterItem] = Field(max_length=MAX_FILTER_ITEMS)


# ----------------------------------------------------------------- responses


class ReceiptBody(BaseModel):
    """A write's answer: the new event's id, ledger position and ledger time."""

    event_id: str = Field(json_schema_extra={"format": "uuid"})
    position: int
    recorded_at: str


class DecisionBody(BaseModel):
    """A permission answer, as `consent-ledger check --json` prints it."""

    allowed: bool
    basis: Literal[tuple(b.value for b in Basis)]  # type: ignore[valid-type]
    event_ids: list[str]
    terms_version: str | None
    position: int
    conditions: list[str]
    contributor: str | None = Field(None, description="Present when a contributor denied.")
    contributor_basis: str | None = Field(None, description="That contributor's basis.")


class FilterAnswer(BaseModel):
    """The allowed pairs of a batch, in request order, and the ledger position reflected."""

    allowed: list[FilterItem]
    position: int


class HistoryEvent(BaseModel):
    """One event of a subject's history; fields beyond these depend on its type."""

    model_config = ConfigDict(extra="allow")

    event_id: str
    type: str
    position: int
    recorded_at: str
    effective_at: str
    voided_by: str | None


class HistoryBody(BaseModel):
    """A page of a subject's history; `next` is the `after` of the following page."""

    subject: str
    events: list[HistoryEvent]
    next: int | None


class TdmBody(BaseModel):
    """TDMRep fields."""

    model_config = ConfigDict(populate_by_name=True)

    tdm_reservation: Literal[0, 1] = Field(alias="tdm-reservation")
    tdm_policy: str | None = Field(alias="tdm-policy")


class UseEntry(BaseModel):
    """A CAWG training-mining entry."""

    use: Literal["allowed", "constrained", "notAllowed"]


class TrainingMining(BaseModel):
    """The CAWG `training-mining` assertion's entries."""

    entries: dict[str, UseEntry]


class AiSignalsBody(BaseModel):
    """AI signals of one piece of content (BRIEF §7)."""

    x_robots_tag: str | None
    tdm: TdmBody
    training_mining: TrainingMining


class FieldError(BaseModel):
    """One field that did not match the schema."""

    location: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The store answers; the projections' lag behind the ledger, if they run here."""

    status: Literal["ready"]
    position: int
    projection_lag: int | None
