"""The signals of one content (or one catalogue) in every vocabulary, rendered once.

`SignalRenderer` turns the states of the signal purposes into `ContentSignals`: the
values of every vocabulary table (`projections.signals.vocabularies`) and each form a
crawler reads — response headers, `<meta>` tags, the JSON body of BRIEF §7 (with the
other vocabularies added), and the exact bytes of each vocabulary's output, whose
SHA-256 the ledger records when they change (`SignalsPublished`). Pure; one renderer
caches one `ContentSignals` per combination of states, since a million catalogues share
a handful of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from html import escape
from typing import Final

import orjson

from ledger.decisions import Decision
from ledger.vocabulary import Vocabulary
from projections.signals.vocabularies import (
    AIPREF,
    CAWG_LABEL,
    CONTENT_SIGNAL,
    NOAI,
    RSL,
    TDMREP,
    Preference,
    SignalVocabulary,
    State,
    signal_tables,
)

X_ROBOTS_TAG_HEADER: Final = "X-Robots-Tag"
TDM_RESERVATION_HEADER: Final = "tdm-reservation"
TDM_POLICY_HEADER: Final = "tdm-policy"
CONTENT_USAGE_HEADER: Final = "Content-Usage"  # draft-ietf-aipref-attach §4
CONTENT_SIGNAL_HEADER: Final = "Content-Signal"

OUTPUTS: Final = ("aipref", "content-signal", "tdmrep", "cawg", "rsl", "noai", "json", "html")
"""The outputs whose bytes are hashed as published, in this order."""


def state_of(decision: Decision) -> State:
    """Return the state a decision gives its purpose: denied, constrained or allowed.

    An allowance decided by a grant with conditions (BRIEF §2.1) is `constrained`.
    """
    if not decision.allowed:
        return State.DENIED
    return State.CONSTRAINED if decision.conditions else State.ALLOWED


@dataclass(frozen=True)
class ContentSignals:
    """What the pages of one content (or catalogue) say to crawlers, in each vocabulary."""

    states: tuple[tuple[str, State], ...]  # (purpose, state), in vocabulary order
    preferences: Mapping[str, Mapping[str, Preference]]  # vocabulary -> term -> preference
    versions: Mapping[str, str]  # vocabulary -> version of its table
    content_usage: str | None  # AIPREF, e.g. "train-ai=n"; None: no preference
    content_signal: str | None  # e.g. "ai-train=no, ai-input=no"
    x_robots_tag: str | None  # "noai, noimageai" or None
    tdm_reservation: int  # 1: rights reserved, 0: not reserved
    tdm_policy: str | None  # announced only while rights are reserved
    training_mining: Mapping[str, str]  # "cawg.<label>" -> allowed | notAllowed | constrained
    rsl_permits: tuple[str, ...]
    rsl_prohibits: tuple[str, ...]
    position: int = field(default=0, compare=False)  # the ledger position reflected

    def to_json(self) -> dict[str, object]:
        """Return the JSON body served: the statement, then the position it reflects."""
        return {**self.statement(), "position": self.position}

    def statement(self) -> dict[str, object]:
        """Return what the signals say: BRIEF §7's fields, then the other vocabularies'.

        Without the position (which moves with every write): this is what is hashed and
        recorded as published, so an unchanged statement is not published again.
        """
        return {
            "x_robots_tag": self.x_robots_tag,
            "tdm": {
                TDM_RESERVATION_HEADER: self.tdm_reservation,
                TDM_POLICY_HEADER: self.tdm_policy,
            },
            "training_mining": {
                "entries": {label: {"use": use} for label, use in self.training_mining.items()}
            },
            "content_usage": self.content_usage,
            "content_signal": self.content_signal,
            "rsl": {"permits": list(self.rsl_permits), "prohibits": list(self.rsl_prohibits)},
            "cawg_assertion": self.cawg_assertion(),
            "vocabularies": dict(self.versions),
        }

    def cawg_assertion(self) -> dict[str, object]:
        """Return the CAWG training-and-data-mining assertion (label and data)."""
        return {
            "label": CAWG_LABEL,
            "data": {
                "entries": {label: {"use": use} for label, use in self.training_mining.items()}
            },
        }

    def headers(self) -> dict[str, str]:
        """Return the response headers; a header with no preference is left out."""
        headers = {TDM_RESERVATION_HEADER: str(self.tdm_reservation)}
        if self.x_robots_tag is not None:
            headers[X_ROBOTS_TAG_HEADER] = self.x_robots_tag
        if self.tdm_policy is not None:
            headers[TDM_POLICY_HEADER] = self.tdm_policy
        if self.content_usage is not None:
            headers[CONTENT_USAGE_HEADER] = self.content_usage
        if self.content_signal is not None:
            headers[CONTENT_SIGNAL_HEADER] = self.content_signal
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

    def rsl_license(self) -> str:
        """Return the RSL `<license>` element of this content (empty: no preference)."""
        parts = []
        if self.rsl_permits:
            parts.append(f'<permits type="usage">{" ".join(self.rsl_permits)}</permits>')
        if self.rsl_prohibits:
            parts.append(f'<prohibits type="usage">{" ".join(self.rsl_prohibits)}</prohibits>')
        return f"<license>{''.join(parts)}</license>" if parts else ""

    def outputs(self) -> dict[str, bytes]:
        """Return the exact bytes of each vocabulary's output, as served (see OUTPUTS).

        Header outputs are the header lines (`Name: value`, CRLF between lines); an
        output with no preference is empty; `json` is the statement (the body served,
        without its `position`).
        """
        headers = self.headers()

        def lines(*names: str) -> bytes:
            return "\r\n".join(f"{n}: {headers[n]}" for n in names if n in headers).encode()

        return {
            "aipref": lines(CONTENT_USAGE_HEADER),
            "content-signal": lines(CONTENT_SIGNAL_HEADER),
            "tdmrep": lines(TDM_RESERVATION_HEADER, TDM_POLICY_HEADER),
            "cawg": orjson.dumps(self.cawg_assertion(), option=orjson.OPT_SORT_KEYS),
            "rsl": self.rsl_license().encode(),
            "noai": lines(X_ROBOTS_TAG_HEADER),
            "json": orjson.dumps(self.statement()),
            "html": self.meta_html().encode(),
        }

    def digests(self) -> dict[str, str]:
        """Return the SHA-256 (lowercase hex) of each output's bytes."""
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.outputs().items()}


class SignalRenderer:
    """Render `ContentSignals` from purpose states for one deployment's vocabulary.

    Caches one result per distinct combination of states.
    """

    def __init__(self, vocabulary: Vocabulary, *, tdm_policy_url: str | None = None) -> None:
        self.vocabulary = vocabulary
        self.tdm_policy_url = tdm_policy_url
        self.tables: tuple[SignalVocabulary, ...] = signal_tables(vocabulary)
        fed = {p for table in self.tables for rule in table.rules for p in rule.purposes}
        # Vocabulary order, so that answers list purposes as the vocabulary does.
        self.purposes: tuple[str, ...] = tuple(p for p in vocabulary.purposes if p in fed)
        self.versions: dict[str, str] = {t.name: t.version for t in self.tables}
        self._cache: dict[tuple[State, ...], ContentSignals] = {}

    def render(self, states: Mapping[str, State]) -> ContentSignals:
        """Return the signals for the states of every purpose in `self.purposes`.

        Raises ValueError naming the purposes whose state is missing.
        """
        try:
            key = tuple(states[p] for p in self.purposes)
        except KeyError:
            missing = [p for p in self.purposes if p not in states]
            raise ValueError(
                f"AI signals need decisions for {missing}; got {sorted(states)}"
            ) from None
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._render(dict(zip(self.purposes, key, strict=True)))
        return found

    def decide(self, decisions: Mapping[str, Decision]) -> ContentSignals:
        """Return the signals that follow from decisions keyed by purpose name.

        Their position is the lowest of the answers' (the ledger state they reflect).
        """
        signals = self.render({p: state_of(d) for p, d in decisions.items()})
        return replace(signals, position=min(decisions[p].position for p in self.purposes))

    def _render(self, states: dict[str, State]) -> ContentSignals:
        prefs = {t.name: t.preferences(states) for t in self.tables}
        by_name = {t.name: t for t in self.tables}

        def dictionary(table: SignalVocabulary) -> str | None:
            items = [
                f"{term}={spelt}"
                for term, pref in prefs[table.name].items()
                if (spelt := table.spell(pref)) is not None
            ]
            return ", ".join(items) or None

        noai = [term for term, pref in prefs[NOAI.name].items() if pref is Preference.NO]
        reserved = prefs[TDMREP.name]["tdm-reservation"] is not Preference.YES
        rsl = prefs[RSL.name]
        return ContentSignals(
            states=tuple(states.items()),
            preferences=prefs,
            versions=dict(self.versions),
            content_usage=dictionary(AIPREF),
            content_signal=dictionary(CONTENT_SIGNAL),
            x_robots_tag=", ".join(noai) or None,
            tdm_reservation=1 if reserved else 0,
            tdm_policy=self.tdm_policy_url if reserved else None,
            training_mining={
                term: spelt
                for term, pref in prefs["cawg"].items()
                if (spelt := by_name["cawg"].spell(pref)) is not None
            },
            rsl_permits=tuple(t for t, p in rsl.items() if RSL.spell(p) == "permits"),
            rsl_prohibits=tuple(t for t, p in rsl.items() if RSL.spell(p) == "prohibits"),
        )
