"""The signal vocabularies crawlers read, each a versioned mapping table (data, not code).

One decision per purpose (for party `*`, now) becomes a *state*: allowed, allowed under
conditions (`constrained`, BRIEF §2.1) or denied. A vocabulary is a list of rules, each a
term of that vocabulary fed by one or more purposes, and the spelling of its values:

- `ANY_DENIED`: the term says "no" if any of its purposes is denied, "constrained" if any
  is constrained (spelt "no" where the vocabulary cannot say constrained), else "yes";
- `UNANIMOUS`: "yes" if all its purposes are allowed, "no" if all are denied, else no
  statement (the more specific terms speak).

A term none of whose purposes the deployment knows states *no preference*: it is left
out of every output, which is not the same as "no". Adding a vocabulary, or a version of
one, is adding a table here; `docs/ai-signals.md` shows each table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ledger.vocabulary import Vocabulary

GENERATIVE: Final = "ai-generative-training"
TRAINING: Final = "ai-training"
INFERENCE: Final = "ai-inference"
MINING: Final = "data-mining"


class State(StrEnum):
    """What one purpose's decision says, as the vocabularies need it."""

    ALLOWED = "allowed"
    CONSTRAINED = "constrained"  # allowed by a grant that carries conditions
    DENIED = "denied"


class Preference(StrEnum):
    """What one term of a vocabulary states."""

    YES = "yes"
    NO = "no"
    CONSTRAINED = "constrained"
    NONE = "none"  # no preference: the term is left out


class Combine(StrEnum):
    """How a term combines the states of its purposes (see the module docstring)."""

    ANY_DENIED = "any-denied"
    UNANIMOUS = "unanimous"


@dataclass(frozen=True)
class Rule:
    """One term of a vocabulary and the purposes that feed it."""

    term: str
    purposes: tuple[str, ...]
    combine: Combine = Combine.ANY_DENIED

    def preference(self, states: Mapping[str, State]) -> Preference:
        """Return what the term states, given the states of the purposes (by name).

        Purposes missing from `states` (unknown to the deployment) are ignored; with none
        left the term states no preference.
        """
        known = [states[p] for p in self.purposes if p in states]
        if not known:
            return Preference.NONE
        if self.combine is Combine.UNANIMOUS:
            if all(s is State.ALLOWED for s in known):
                return Preference.YES
            if all(s is State.DENIED for s in known):
                return Preference.NO
            return Preference.NONE
        if State.DENIED in known:
            return Preference.NO
        if State.CONSTRAINED in known:
            return Preference.CONSTRAINED
        return Preference.YES


@dataclass(frozen=True)
class SignalVocabulary:
    """A versioned mapping table: the terms of one vocabulary, and how values are spelt.

    `spelling` maps YES / NO (and CONSTRAINED where the vocabulary has it) to the text the
    vocabulary uses; a CONSTRAINED preference it cannot spell is spelt as NO.
    """

    name: str
    version: str
    reference: str
    rules: tuple[Rule, ...]
    spelling: Mapping[Preference, str] = field(default_factory=lambda: MappingProxyType({}))

    def spell(self, preference: Preference) -> str | None:
        """Return the vocabulary's text for a preference (None for no preference)."""
        if preference is Preference.NONE:
            return None
        if preference is Preference.CONSTRAINED and preference not in self.spelling:
            preference = Preference.NO
        return self.spelling.get(preference)

    def preferences(self, states: Mapping[str, State]) -> dict[str, Preference]:
        """Return each term's preference, in table order (no-preference terms included)."""
        return {rule.term: rule.preference(states) for rule in self.rules}


def _spelling(yes: str, no: str, constrained: str | None = None) -> Mapping[Preference, str]:
    spelt = {Preference.YES: yes, Preference.NO: no}
    if constrained is not None:
        spelt[Preference.CONSTRAINED] = constrained
    return MappingProxyType(spelt)


AIPREF: Final = SignalVocabulary(
    name="aipref",
    version="draft-ietf-aipref-vocab-05+draft-ietf-aipref-attach-04",
    reference="IETF AIPREF vocabulary and attachment drafts: Content-Usage header and "
    "robots.txt rules",
    # Generative training is training: either denied makes train-ai=n. `search` and `bots`
    # have no purpose in the ledger's vocabulary, so they state no preference.
    rules=(Rule("train-ai", (TRAINING, GENERATIVE)),),
    spelling=_spelling("y", "n"),
)

CONTENT_SIGNAL: Final = SignalVocabulary(
    name="content-signal",
    version="cloudflare-content-signals-policy-2025-09",
    reference="Cloudflare Content Signals Policy: Content-Signal in robots.txt",
    rules=(Rule("ai-train", (TRAINING, GENERATIVE)), Rule("ai-input", (INFERENCE,))),
    spelling=_spelling("yes", "no"),
)

TDMREP: Final = SignalVocabulary(
    name="tdmrep",
    version="w3c-tdmrep-1.0-cg-final-2024",
    reference="W3C TDM Reservation Protocol: headers, <meta>, /.well-known/tdmrep.json",
    # tdm-reservation 1 reserves the rights: mining denied (or only under conditions,
    # which tdm-policy then states).
    rules=(Rule("tdm-reservation", (MINING,)),),
    spelling=_spelling("0", "1"),
)

RSL: Final = SignalVocabulary(
    name="rsl",
    version="rsl-1.0",
    reference="Really Simple Licensing 1.0: License: in robots.txt and an RSL XML document",
    rules=(
        Rule("ai-all", (GENERATIVE, TRAINING, INFERENCE), Combine.UNANIMOUS),
        Rule("ai-train", (TRAINING, GENERATIVE)),
        Rule("ai-input", (INFERENCE,)),
    ),
    spelling=_spelling("permits", "prohibits"),
)

NOAI: Final = SignalVocabulary(
    name="noai",
    version="noai-noimageai-2022",
    reference="noai / noimageai directives in X-Robots-Tag and <meta name=robots>",
    rules=(Rule("noai", (GENERATIVE,)), Rule("noimageai", (GENERATIVE,))),
    spelling=MappingProxyType({Preference.NO: "set"}),  # a directive can only say "no"
)

CAWG_LABEL: Final = "cawg.training-mining"
CAWG_VERSION: Final = "cawg-training-and-data-mining-1.1"
CAWG_PREFIX: Final = "cawg."


def cawg_vocabulary(vocabulary: Vocabulary) -> SignalVocabulary:
    """Return the CAWG training-and-data-mining table: one entry per purpose with a label.

    The purposes are data (a deployment may add some), so this table follows them.
    """
    return SignalVocabulary(
        name="cawg",
        version=CAWG_VERSION,
        reference="CAWG training-and-data-mining assertion v1.1 (label cawg.training-mining)",
        rules=tuple(
            Rule(CAWG_PREFIX + p.cawg_label, (p.name,))
            for p in vocabulary.purposes.values()
            if p.cawg_label is not None
        ),
        spelling=_spelling("allowed", "notAllowed", "constrained"),
    )


FIXED_TABLES: Final = (AIPREF, CONTENT_SIGNAL, TDMREP, RSL, NOAI)
"""Every vocabulary table but CAWG's, which follows the deployment's purposes."""


def signal_tables(vocabulary: Vocabulary) -> tuple[SignalVocabulary, ...]:
    """Return every vocabulary table the signals use, in output order."""
    return (*FIXED_TABLES[:4], cawg_vocabulary(vocabulary), FIXED_TABLES[4])
