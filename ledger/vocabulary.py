"""The ledger's vocabulary: purposes and their consent model, aspects, parties, bases.

Purposes are data, not code branches: a deployment may extend the default table
(see `Vocabulary.with_purposes`), and every rule reads the model from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ledger.errors import (
    InvalidIdentifierError,
    InvalidInputError,
    InvalidPartyError,
    UnknownAspectError,
    UnknownPurposeError,
)

PLATFORM: Final = "platform"
"""The first party: the platform that operates the ledger."""

ANY_THIRD_PARTY: Final = "*"
"""Every third party at once: an open grant or revocation."""

PARTY_PATTERN: Final = r"^(platform|\*|[a-z0-9][a-z0-9._-]{0,63})$"
"""The party rule as a regular expression (the OpenAPI `pattern` of a party)."""

IDENTIFIER_PATTERN: Final = (
    r"^[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000,/\\?#%]{1,256}$"
)
"""The identifier rule (subject and content ids): 1-256 characters, none of them a control
character (C0, DEL, C1), whitespace or one of `, / \\ ? # %`. Written with explicit ranges
rather than `\\s`, so that it means the same in Python and in an OpenAPI (ECMA 262) pattern."""

_THIRD_PARTY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # use fullmatch: `$` allows a final \n
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

ASPECTS: Final = ("music", "voice", "likeness", "all")
ALL_ASPECTS: Final = "all"
CONTRIBUTOR_ASPECTS: Final = ("music", "voice", "likeness")
"""The aspects a contributor may hold, in the order contributors are asked (BRIEF §2.1)."""
CONDITION_MAX_LENGTH: Final = 500


class ConsentModel(StrEnum):
    """How a purpose may be allowed: by terms defaults, or only by explicit opt-in."""

    OPT_IN = "opt-in"
    TERMS_GOVERNED = "terms-governed"


class Basis(StrEnum):
    """The ground a decision stands on, named in every answer."""

    EXPLICIT_GRANT = "explicit-grant"
    EXPLICIT_REVOCATION = "explicit-revocation"
    TERMS_DEFAULT = "terms-default"
    NO_TERMS_ACCEPTED = "no-terms-accepted"
    OPT_IN_REQUIRED = "opt-in-required"
    GRANT_EXPIRED = "grant-expired"
    ERASED = "erased"
    CONTRIBUTOR_DENIED = "contributor-denied"


@dataclass(frozen=True)
class Purpose:
    """A purpose of use, its consent model and the C2PA/CAWG label it maps to (if any)."""

    name: str
    model: ConsentModel
    cawg_label: str | None = None


DEFAULT_PURPOSES: Final = (
    Purpose("ai-generative-training", ConsentModel.OPT_IN, "ai_generative_training"),
    Purpose("ai-training", ConsentModel.TERMS_GOVERNED, "ai_training"),
    Purpose("ai-inference", ConsentModel.TERMS_GOVERNED, "ai_inference"),
    Purpose("data-mining", ConsentModel.TERMS_GOVERNED, "data_mining"),
    Purpose("personalization", ConsentModel.TERMS_GOVERNED),
    Purpose("content-identification", ConsentModel.TERMS_GOVERNED),
    Purpose("fraud-detection", ConsentModel.TERMS_GOVERNED),
)


@dataclass(frozen=True)
class Vocabulary:
    """The purposes a deployment knows; validates every name that enters the ledger."""

    purposes: Mapping[str, Purpose] = field(
        default_factory=lambda: MappingProxyType({p.name: p for p in DEFAULT_PURPOSES})
    )

    def with_purposes(self, extra: Iterable[Purpose]) -> Vocabulary:
        """Return a vocabulary that also knows `extra` (which may redefine a default)."""
        merged = dict(self.purposes)
        merged.update({p.name: p for p in extra})
        return Vocabulary(MappingProxyType(merged))

    def purpose(self, name: str) -> Purpose:
        """Return the purpose called `name`; raise UnknownPurposeError otherwise."""
        try:
            return self.purposes[name]
        except KeyError:
            raise UnknownPurposeError(name, sorted(self.purposes)) from None


def check_aspect(aspect: str) -> str:
    """Return `aspect` if it is one of music, voice, likeness, all."""
    if aspect not in ASPECTS:
        raise UnknownAspectError(aspect, list(ASPECTS))
    return aspect


def check_party(party: str) -> str:
    """Return `party` if it is `platform`, `*` or `[a-z0-9][a-z0-9._-]{0,63}`."""
    if party in (PLATFORM, ANY_THIRD_PARTY) or _THIRD_PARTY.fullmatch(party):
        return party
    raise InvalidPartyError(
        f"party {party!r} is not 'platform', '*' or a name matching [a-z0-9][a-z0-9._-]{{0,63}}"
    )


def check_model(model: str) -> str:
    """Return a model name if it has the syntax of a named party (BRIEF §2.1)."""
    if _THIRD_PARTY.match(model):
        return model
    raise InvalidPartyError(f"model {model!r} is not a name matching [a-z0-9][a-z0-9._-]{{0,63}}")


def check_agent(agent: str) -> str:
    """Return an agent name if it is a named party other than `platform` (BRIEF §2.1)."""
    if agent != PLATFORM and _THIRD_PARTY.match(agent):
        return agent
    raise InvalidPartyError(
        f"agent {agent!r} must be a name matching [a-z0-9][a-z0-9._-]{{0,63}}, "
        "not 'platform' or '*'"
    )


def check_condition(condition: str) -> str:
    """Return a grant's condition if it is 1-500 characters (BRIEF §2.1)."""
    if not 1 <= len(condition) <= CONDITION_MAX_LENGTH:
        raise InvalidInputError(
            f"condition: got {len(condition)} characters, want 1-{CONDITION_MAX_LENGTH}"
        )
    return condition


def is_third_party(party: str) -> bool:
    """Tell whether `party` is anyone but the first party."""
    return party != PLATFORM


def check_identifier(value: str, *, field: str) -> str:
    """Return a subject or content id if it is 1-256 characters without blanks or separators."""
    if not _IDENTIFIER.fullmatch(value):  # fullmatch: `$` alone would allow a final newline
        raise InvalidIdentifierError(
            f"{field} {value!r} must be 1-256 characters with no whitespace, control "
            "characters, ',', '/', '\\', '?', '#' or '%'"
        )
    return value
