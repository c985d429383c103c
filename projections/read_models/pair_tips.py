"""The batch lookup behind `filter`: the tips of many (subject, content) pairs in one read.

One statement, five row kinds told apart by a leading tag column (a UNION ALL over the
tips, the terms tips, the erasures and the two clock reads), so that a batch of pairs
costs one round trip whatever its size. Every branch yields the same twelve columns; the
ones a kind does not use are typed NULLs. A tip row carries its model in column 9, its
purpose in column 10 (so one read serves several purposes: the AI signals) and its
conditions in column 11.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from ledger.decisions import NO_MODEL
from projections.timeline import CATALOGUE, Fact

__all__ = [
    "PairTips",
    "RowKind",
    "pair_tips_query",
    "purposes_tips_query",
    "read_pair_tips",
    "read_purposes_tips",
]


class RowKind(IntEnum):
    """The tag (first column) of each row kind the statement returns."""

    TIP = 0  # a perm_current row: columns 1-8
    TERMS_TIP = 1  # a perm_terms_current row: subject, event_id, effective_at, position, …
    ERASURE = 2  # a perm_erasures row: subject, event_id
    POSITION = 3  # the view position as known at `known_at` (column 7)
    HEAD_RECORDED_AT = 4  # the latest recorded_at the view holds (column 8)


_NULL_TEXT: Final = "CAST(NULL AS TEXT)"
_NULL_INT: Final = "CAST(NULL AS BIGINT)"


def _row(kind: RowKind, *columns: str) -> str:
    """Return the select list of one branch: its tag, then the eleven shared columns."""
    return f"SELECT {int(kind)}, " + ", ".join(columns)


_POSITION_KNOWN_AT: Final = (
    _row(RowKind.POSITION, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT, _NULL_INT, _NULL_TEXT,
         _NULL_INT, "position", _NULL_INT, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT)
    + " FROM (SELECT position FROM perm_clock WHERE recorded_at <= ? "
    "ORDER BY recorded_at DESC, position DESC LIMIT 1) AS p"
)  # fmt: skip
_POSITION_NOW: Final = (
    _row(RowKind.POSITION, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT, _NULL_INT, _NULL_TEXT,
         _NULL_INT, "MAX(position)", _NULL_INT, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT)
    + " FROM perm_clock"
)  # fmt: skip
_TIPS: Final = (
    _row(RowKind.TIP, "c.subject", "c.party", "c.scope", "c.kind", "c.event_id",
         "c.effective_at", "c.position", "c.expires_at", "c.model", "c.purpose",
         "c.conditions")
    + " FROM q JOIN perm_current c ON c.subject = q.subject AND c.scope = q.scope "
    "WHERE c.purpose IN ({purposes}) AND c.party IN ({parties}) AND c.aspect = 'all' "
    "AND c.model IN (?, ?)"
)  # fmt: skip
_TERMS_TIPS: Final = (
    _row(RowKind.TERMS_TIP, "t.subject", _NULL_TEXT, _NULL_TEXT, _NULL_INT, "t.event_id",
         "t.effective_at", "t.position", "t.effective_from", "t.version", _NULL_TEXT, _NULL_TEXT)
    + " FROM perm_terms_current t WHERE t.subject IN (SELECT subject FROM q)"
)  # fmt: skip
_ERASURES: Final = (
    _row(RowKind.ERASURE, "e.subject", _NULL_TEXT, _NULL_TEXT, _NULL_INT, "e.event_id",
         _NULL_INT, _NULL_INT, _NULL_INT, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT)
    + " FROM perm_erasures e WHERE e.subject IN (SELECT subject FROM q) AND e.recorded_at <= ?"
)  # fmt: skip
_HEAD: Final = (
    _row(RowKind.HEAD_RECORDED_AT, _NULL_TEXT, _NULL_TEXT, _NULL_TEXT, _NULL_INT, _NULL_TEXT,
         _NULL_INT, _NULL_INT, "MAX(recorded_at)", _NULL_TEXT, _NULL_TEXT, _NULL_TEXT)
    + " FROM perm_clock"
)  # fmt: skip


@dataclass
class PairTips:
    """What `tips_for_pairs` read: tips by (subject, party, scope, model), terms, erasures."""

    facts: dict[tuple[str, str, str, str], Fact] = field(default_factory=dict)
    acceptances: dict[str, tuple[str, str, int, int, int]] = field(default_factory=dict)
    erasures: dict[str, str] = field(default_factory=dict)
    position: int = 0
    head_recorded_at: int | None = None


def pair_tips_query(
    purpose: str,
    parties: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    known_at: int,
    known_at_given: bool,
    model: str | None = None,
) -> tuple[str, list[Any]]:
    """Return the statement (`?` placeholders, bare names) and parameters of a batch read.

    Only aspect `all` is read (the batch filter asks about every aspect), and the
    question's model and model-less tips. Requires at least one pair and one party.
    """
    return purposes_tips_query(
        (purpose,), parties, pairs, known_at=known_at, known_at_given=known_at_given, model=model
    )


def purposes_tips_query(
    purposes: Sequence[str],
    parties: Sequence[str],
    pairs: Sequence[tuple[str, str | None]],
    *,
    known_at: int,
    known_at_given: bool,
    model: str | None = None,
) -> tuple[str, list[Any]]:
    """Return the batch read of `pair_tips_query` for several purposes at once.

    A pair with content None asks about the catalogue only. Reads the model-less tips and,
    with a `model`, that model's. Each tip row carries its purpose in column 10
    (`read_purposes_tips` splits them).
    """
    scoped = list(
        dict.fromkeys(
            (s, scope)
            for s, c in pairs
            for scope in ((CATALOGUE,) if c is None else (c, CATALOGUE))
        )
    )
    values = ", ".join(["(?, ?)"] * len(scoped))
    party_marks = ", ".join("?" * len(parties))
    purpose_marks = ", ".join("?" * len(purposes))
    position = _POSITION_KNOWN_AT if known_at_given else _POSITION_NOW
    statement = f"WITH q (subject, scope) AS (VALUES {values}) " + " UNION ALL ".join(
        (
            _TIPS.format(purposes=purpose_marks, parties=party_marks),
            _TERMS_TIPS,
            _ERASURES,
            position,
            _HEAD,
        )
    )
    params: list[Any] = [value for pair in scoped for value in pair]
    params.extend([*purposes, *parties, model or NO_MODEL, NO_MODEL, known_at])
    if known_at_given:
        params.append(known_at)
    return statement, params


def read_pair_tips(rows: Iterable[Sequence[Any]]) -> PairTips:
    """Return the PairTips the rows of `pair_tips_query` hold."""
    tips = PairTips()
    for row in rows:
        kind = row[0]
        if kind == RowKind.TIP:
            tips.facts[(row[1], row[2], row[3], row[9])] = Fact(
                row[4], row[5], row[6], row[7], row[8], row[11]
            )
        elif kind == RowKind.TERMS_TIP:
            tips.acceptances[row[1]] = (row[5], row[9], row[6], row[7], row[8])
        elif kind == RowKind.ERASURE:
            tips.erasures[row[1]] = row[5]
        elif kind == RowKind.POSITION:
            tips.position = row[7] or 0
        else:
            tips.head_recorded_at = row[8]
    return tips


def read_purposes_tips(
    rows: Iterable[Sequence[Any]], purposes: Sequence[str]
) -> dict[str, PairTips]:
    """Return one PairTips per purpose from the rows of `purposes_tips_query`.

    The purposes' PairTips share the terms tips, erasures and clock reads.
    """
    shared = PairTips()
    by_purpose = {
        p: PairTips(acceptances=shared.acceptances, erasures=shared.erasures) for p in purposes
    }
    other: list[Sequence[Any]] = []
    for row in rows:
        if row[0] == RowKind.TIP:
            fact = Fact(row[4], row[5], row[6], row[7], row[8], row[11])
            by_purpose[row[10]].facts[(row[1], row[2], row[3], row[9])] = fact
        else:
            other.append(row)
    rest = read_pair_tips(other)
    shared.acceptances.update(rest.acceptances)
    shared.erasures.update(rest.erasures)
    for tips in by_purpose.values():
        tips.position, tips.head_recorded_at = rest.position, rest.head_recorded_at
    return by_purpose
