"""AI signals of one piece of content (BRIEF §7), derived from decisions for any third party.

Signals speak to crawlers, i.e. to an unnamed third party: they follow the decisions for
party `*` now. Three vocabularies carry them:
- `X-Robots-Tag` / `<meta name="robots">`: `noai, noimageai` when generative training
  is denied;
- TDMRep (W3C Community Group Final Report, 2024): `tdm-reservation: 1` when text and
  data mining is denied, with an optional `tdm-policy` URL;
- C2PA/CAWG `training-mining` assertion entries, one per purpose with a CAWG label:
  `{"use": "allowed" | "constrained" | "notAllowed"}` (`constrained`: allowed by a grant
  with conditions, BRIEF §2.1).

Pure: the caller asks the questions (`signal_purposes`) and passes the decisions in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Final

from ledger.decisions import Decision
from ledger.vocabulary import ANY_THIRD_PARTY, Purpose, Vocabulary

SIGNAL_PARTY: Final = ANY_THIRD_PARTY
"""The party whose decisions the signals follow: any third party."""

NOAI_PURPOSE: Final = "ai-generative-training"
"""Denied for `*` -> `noai, noimageai` in X-Robots-Tag and the robots meta tag."""

TDM_PURPOSE: Final = "data-mining"
"""Denied for `*` -> `tdm-reservation: 1` (TDMRep)."""

NOAI_DIRECTIVES: Final = "noai, noimageai"
CAWG_PREFIX: Final = "cawg."
USE_ALLOWED: Final = "allowed"
USE_NOT_ALLOWED: Final = "notAllowed"
USE_CONSTRAINED: Final = "constrained"
"""CAWG's value for an allowed use decided by a grant with conditions (BRIEF §2.1)."""

X_ROBOTS_TAG_HEADER: Final = "X-Robots-Tag"
TDM_RESERVATION_HEADER: Final = "tdm-reservation"
TDM_POLICY_HEADER: Final = "tdm-policy"


def signal_purposes(vocabulary: Vocabulary) -> list[Purpose]:
    """Return the purposes whose decisions the signals need, in vocabulary order.

    Those with a CAWG label, plus the two that drive `noai` and `tdm-reservation`.
    """
    wanted = [
        p
        for p in vocabulary.purposes.values()
        if p.cawg_label is not None or p.name in (NOAI_PURPOSE, TDM_PURPOSE)
    ]
    names = {p.name for p in wanted}
    for required in (NOAI_PURPOSE, TDM_PURPOSE):
        if required not in names:
            wanted.append(vocabulary.purpose(required))
    return wanted


@dataclass(frozen=True)
class AiSignals:
    """The signals of one piece of content, in each form a crawler reads."""

    x_robots_tag: str | None
    tdm_reservation: int  # 1: rights reserved (mining denied), 0: not reserved
    tdm_policy: str | None
    training_mining: Mapping[str, str]  # "cawg.<label>" -> "allowed" | "notAllowed"
    position: int = 0  # the ledger position the signals reflect (the lowest of their answers)

    def to_json(self) -> dict[str, object]:
        """Return the JSON body of BRIEF §7."""
        return {
            "x_robots_tag": self.x_robots_tag,
            "tdm": {
                TDM_RESERVATION_HEADER: self.tdm_reservation,
                TDM_POLICY_HEADER: self.tdm_policy,
            },
            "training_mining": {
                "entries": {label: {"use": use} for label, use in self.training_mining.items()}
            },
            "position": self.position,
        }

    def headers(self) -> dict[str, str]:
        """Return the response headers: X-Robots-Tag (when set), tdm-reservation, tdm-policy."""
        headers = {TDM_RESERVATION_HEADER: str(self.tdm_reservation)}
        if self.x_robots_tag is not None:
            headers[X_ROBOTS_TAG_HEADER] = self.x_robots_tag
        if self.tdm_policy is not None:
            headers[TDM_POLICY_HEADER] = self.tdm_policy
        return headers

    def meta_html(self) -> str:
        """Return `<meta>` tags a page can embed in its `<head>`, one per line.

        `robots` carries the X-Robots-Tag directives, `tdm-reservation`/`tdm-policy` are
        TDMRep's HTML form, and each CAWG entry is named by its label.
        """
        tags: list[tuple[str, str]] = []
        if self.x_robots_tag is not None:
            tags.append(("robots", self.x_robots_tag))
        tags.append((TDM_RESERVATION_HEADER, str(self.tdm_reservation)))
        if self.tdm_policy is not None:
            tags.append((TDM_POLICY_HEADER, self.tdm_policy))
        tags.extend(self.training_mining.items())
        return "".join(
            f'<meta name="{escape(name)}" content="{escape(content)}">\n' for name, content in tags
        )


def cawg_use(decision: Decision) -> str:
    """Return the CAWG `use` of a decision: allowed, constrained (with conditions) or not."""
    if not decision.allowed:
        return USE_NOT_ALLOWED
    return USE_CONSTRAINED if decision.conditions else USE_ALLOWED


def derive_signals(
    decisions: Mapping[str, Decision],
    vocabulary: Vocabulary,
    *,
    tdm_policy_url: str | None = None,
) -> AiSignals:
    """Return the signals that follow from decisions for party `*`, keyed by purpose name.

    Requires a decision for every purpose of `signal_purposes(vocabulary)`; raises
    ValueError naming the missing ones otherwise. `tdm_policy_url` is announced only
    while rights are reserved (TDMRep: a policy says how to license what is reserved).
    """
    wanted = signal_purposes(vocabulary)
    missing = [p.name for p in wanted if p.name not in decisions]
    if missing:
        raise ValueError(f"AI signals need decisions for {missing}; got {sorted(decisions)}")
    mining_denied = not decisions[TDM_PURPOSE].allowed
    return AiSignals(
        x_robots_tag=None if decisions[NOAI_PURPOSE].allowed else NOAI_DIRECTIVES,
        tdm_reservation=1 if mining_denied else 0,
        tdm_policy=tdm_policy_url if mining_denied else None,
        training_mining={
            CAWG_PREFIX + p.cawg_label: cawg_use(decisions[p.name])
            for p in wanted
            if p.cawg_label is not None
        },
        position=min(decisions[p.name].position for p in wanted),
    )
