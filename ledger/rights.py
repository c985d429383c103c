"""Rights holders beyond one artist (BRIEF §2.1): the pure rules of the write side.

Works with contributors (their validation, ISRC and ISWC syntax) and agents (whether an
authority is in force for a write). No clock and no I/O: the instant of the write and
the subject's recorded events come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from ledger.errors import (
    AuthorityNotInForceError,
    InvalidInputError,
    NotAuthorisedError,
)
from ledger.events import AuthorityGranted, AuthorityRevoked, LedgerEvent
from ledger.vocabulary import CONTRIBUTOR_ASPECTS, check_identifier

# ISO 3901: CC-XXX-YY-NNNNN (country, registrant, year, designation), hyphens optional.
_ISRC: Final = re.compile(r"^([A-Z]{2})-?([A-Z0-9]{3})-?([0-9]{2})-?([0-9]{5})$")
# ISO 15707: T-DDD.DDD.DDD-C, separators optional; C is a check digit.
_ISWC: Final = re.compile(r"^T-?([0-9]{3})\.?([0-9]{3})\.?([0-9]{3})-?([0-9])$")


def check_isrc(isrc: str) -> str:
    """Return an ISRC (ISO 3901) in its compact form, CCXXXYYNNNNN; refuse another syntax."""
    match = _ISRC.match(isrc)
    if match is None:
        raise InvalidInputError(
            f"isrc {isrc!r} is not an ISRC (ISO 3901): want CC-XXX-YY-NNNNN, e.g. US-S1Z-99-00001"
        )
    return "".join(match.groups())


def check_iswc(iswc: str) -> str:
    """Return an ISWC (ISO 15707) as T-DDD.DDD.DDD-C; refuse a bad syntax or check digit.

    The check digit C makes 1 + sum(i * d_i for the nine digits d_1..d_9) + C a
    multiple of 10.
    """
    match = _ISWC.match(iswc)
    if match is None:
        raise InvalidInputError(
            f"iswc {iswc!r} is not an ISWC (ISO 15707): want T-DDD.DDD.DDD-C, e.g. T-034.524.680-1"
        )
    digits = "".join(match.groups()[:3])
    want = (10 - (1 + sum(i * int(d) for i, d in enumerate(digits, 1))) % 10) % 10
    if int(match.group(4)) != want:
        raise InvalidInputError(f"iswc {iswc!r}: check digit is {match.group(4)}, want {want}")
    return f"T-{digits[:3]}.{digits[3:6]}.{digits[6:]}-{want}"


def check_contributors(
    owner: str, contributors: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Return a registration's contributors as `[{subject, aspects}]`, in the given order.

    Refuses an unknown contributor aspect, the owner as a contributor, a contributor
    named twice, a contributor without aspects or with an aspect twice.
    """
    seen: set[str] = set()
    checked: list[dict[str, Any]] = []
    for contributor in contributors:
        subject = check_identifier(str(contributor.get("subject", "")), field="contributor")
        aspects = list(contributor.get("aspects") or [])
        if subject == owner:
            raise InvalidInputError(f"contributor {subject!r} is the owner")
        if subject in seen:
            raise InvalidInputError(f"contributor {subject!r} is named twice")
        if not aspects:
            raise InvalidInputError(f"contributor {subject!r} has no aspects")
        for aspect in aspects:
            if aspect not in CONTRIBUTOR_ASPECTS:
                raise InvalidInputError(
                    f"contributor {subject!r}: unknown aspect {aspect!r}; contributor aspects: "
                    + ", ".join(CONTRIBUTOR_ASPECTS)
                )
        if len(set(aspects)) != len(aspects):
            raise InvalidInputError(f"contributor {subject!r} names an aspect twice")
        seen.add(subject)
        checked.append({"subject": subject, "aspects": aspects})
    return checked


def parse_contributor(text: str) -> dict[str, Any]:
    """Return `{subject, aspects}` from the CLI's SUBJECT=ASPECT[,ASPECT]."""
    subject, sep, aspects = text.partition("=")
    if not sep or not subject or not aspects:
        raise InvalidInputError(f"--contributor {text!r}: want SUBJECT=ASPECT[,ASPECT]")
    return {"subject": subject, "aspects": aspects.split(",")}


def authority_in_force(
    events: Iterable[LedgerEvent], agent: str, now: datetime
) -> AuthorityGranted | None:
    """Return the subject's latest authority event for `agent` if it is a grant in force.

    In force: an AuthorityGranted not expired at `now` (expiry is exclusive).
    """
    latest: AuthorityGranted | AuthorityRevoked | None = None
    for event in events:
        if isinstance(event, AuthorityGranted | AuthorityRevoked) and event.agent == agent:
            latest = event
    if not isinstance(latest, AuthorityGranted):
        return None
    if latest.expires_at is not None and latest.expires_at <= now:
        return None
    return latest


def require_authority(
    events: Iterable[LedgerEvent],
    subject: str,
    actor: str | None,
    purpose: str | None,
    now: datetime,
) -> None:
    """Refuse a write by `actor` for `subject` unless the actor is the subject or an
    agent with an authority in force at `now` covering `purpose` (None: a terms
    acceptance, which needs an authority for all purposes).
    """
    if actor is None or actor == subject:
        return
    authority = authority_in_force(events, actor, now)
    if authority is None:
        raise NotAuthorisedError(f"{actor!r} holds no authority in force to act for {subject!r}")
    if authority.purposes is None:
        return
    if purpose is None:
        raise NotAuthorisedError(
            f"{actor!r} may act for {subject!r} only for {', '.join(authority.purposes)}; "
            "accepting terms needs an authority for all purposes"
        )
    if purpose not in authority.purposes:
        raise NotAuthorisedError(
            f"{actor!r} may act for {subject!r} only for {', '.join(authority.purposes)}, "
            f"not {purpose}"
        )


def require_authority_in_force(
    events: Iterable[LedgerEvent], subject: str, agent: str, now: datetime
) -> None:
    """Refuse to revoke an authority that is not in force (404)."""
    if authority_in_force(events, agent, now) is None:
        raise AuthorityNotInForceError(f"{agent!r} holds no authority in force for {subject!r}")
