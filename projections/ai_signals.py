"""AI signals of one piece of content (BRIEF §7), derived from decisions for any third party.

Signals speak to crawlers, i.e. to an unnamed third party: they follow the decisions for
party `*` now. The vocabularies (AIPREF `Content-Usage`, Content-Signal, TDMRep, CAWG
training-and-data-mining, RSL, `noai`) are mapping tables in `projections.signals`; this
module names the questions to ask and turns their answers into `ContentSignals`. An
allowed answer decided by a grant with conditions (BRIEF §2.1) is CAWG `constrained`.

Pure: the caller asks the questions (`signal_purposes`) and passes the decisions in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ledger.decisions import Decision
from ledger.vocabulary import ANY_THIRD_PARTY, Purpose, Vocabulary
from projections.signals.content import (
    TDM_POLICY_HEADER,
    TDM_RESERVATION_HEADER,
    X_ROBOTS_TAG_HEADER,
    ContentSignals,
    SignalRenderer,
)

__all__ = [
    "SIGNAL_PARTY",
    "TDM_POLICY_HEADER",
    "TDM_RESERVATION_HEADER",
    "X_ROBOTS_TAG_HEADER",
    "AiSignals",
    "derive_signals",
    "signal_purposes",
]

SIGNAL_PARTY: Final = ANY_THIRD_PARTY
"""The party whose decisions the signals follow: any third party."""

AiSignals = ContentSignals
"""The signals of one piece of content, in each form a crawler reads."""


def signal_purposes(vocabulary: Vocabulary) -> list[Purpose]:
    """Return the purposes whose decisions the signals need, in vocabulary order.

    Those with a CAWG label, plus those any other vocabulary table maps.
    """
    return [vocabulary.purposes[name] for name in SignalRenderer(vocabulary).purposes]


def derive_signals(
    decisions: Mapping[str, Decision],
    vocabulary: Vocabulary,
    *,
    tdm_policy_url: str | None = None,
) -> ContentSignals:
    """Return the signals that follow from decisions for party `*`, keyed by purpose name.

    Requires a decision for every purpose of `signal_purposes(vocabulary)`; raises
    ValueError naming the missing ones otherwise. `tdm_policy_url` is announced only
    while rights are reserved (TDMRep: a policy says how to license what is reserved).
    """
    return SignalRenderer(vocabulary, tdm_policy_url=tdm_policy_url).decide(decisions)
