"""A subject's consent over time, as a chart and a matrix: the legal team's picture.

`subject_overview` answers, for one subject, two questions the timeline page draws:

- the *chart*: one lane per purpose for the platform, plus one per (purpose, party,
  content, aspect) that the subject's grants and revocations name; over effective time
  from the first event to today, bands where the answer holds still (allowed or denied,
  with its basis), markers for every event, the terms version in force as a band
  beneath, and the terms publications. It is drawn twice: as the ledger knows it now,
  and as it knew it at K, so a backfilled or voided event shows as a difference.
- the *matrix*: every purpose x {platform, each named party, `*`} decided at D as known
  at K, with the terms in force and their clauses.

Every band and cell is an answer of `ledger.decisions.decide`, the one implementation of
the rules: between two consecutive instants at which some event or terms version takes
or loses effect, the answer cannot change, so deciding at each such instant is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ledger.application import ConsentLedger
from ledger.decisions import Decision, Question, covers, decide, known_state, terms_in_force
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SubjectErased,
    TermsAccepted,
    TermsPublished,
)
from ledger.instants import format_instant
from ledger.vocabulary import ALL_ASPECTS, ANY_THIRD_PARTY, PLATFORM, Purpose

CHART_FORMAT: Final = "consent-ledger-overview/1"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
TAIL: Final = timedelta(days=30)
"""How far the chart runs past the latest instant it must show, so its last band is visible."""


@dataclass(frozen=True, order=True)
class Lane:
    """One row of the chart: a purpose, a party, and the scope the row asks about."""

    purpose: str
    party: str
    content: str | None
    aspect: str

    @property
    def key(self) -> str:
        """Return the lane's id: its words joined by `|` (content empty for the catalogue)."""
        return "|".join((self.purpose, self.party, self.content or "", self.aspect))

    def to_json(self) -> dict[str, Any]:
        """Return the lane's words and id."""
        return {
            "key": self.key,
            "purpose": self.purpose,
            "party": self.party,
            "content": self.content,
            "aspect": self.aspect,
        }


def lanes_of(entries: Iterable[Entry], purposes: Sequence[str]) -> list[Lane]:
    """Return the chart's lanes: each purpose for the platform, then each distinct
    (purpose, party, content, aspect) an explicit event names, in vocabulary order."""
    found = {Lane(p, PLATFORM, None, ALL_ASPECTS) for p in purposes}
    for entry in entries:
        event = entry.event
        if isinstance(event, ConsentGranted | ConsentRevoked):
            for content in _scopes(event.content_ids):
                found.add(Lane(event.purpose, event.party, content, event.aspect))
    rank = {p: i for i, p in enumerate(purposes)}

    def order(lane: Lane) -> tuple[int, str, bool, str, str, str]:
        return (
            rank.get(lane.purpose, len(rank)),
            lane.purpose,
            lane.party != PLATFORM,
            lane.party,
            lane.content or "",
            "" if lane.aspect == ALL_ASPECTS else lane.aspect,
        )

    return sorted(found, key=order)


def _scopes(content_ids: Sequence[str] | None) -> Sequence[str | None]:
    """Return the scopes of an event: its content ids, or None for the whole catalogue."""
    return list(content_ids) if content_ids else [None]


def matrix_parties(entries: Iterable[Entry]) -> list[str]:
    """Return the matrix's parties: platform, each named party of the events, then `*`."""
    named = {
        e.event.party
        for e in entries
        if isinstance(e.event, ConsentGranted | ConsentRevoked)
        and e.event.party not in (PLATFORM, ANY_THIRD_PARTY)
    }
    return [PLATFORM, *sorted(named), ANY_THIRD_PARTY]


def change_points(
    entries: Iterable[Entry], catalog: Mapping[str, TermsPublished], start: datetime
) -> list[datetime]:
    """Return, sorted, every instant from `start` on at which an answer may change."""
    points = {start}
    for entry in entries:
        event = entry.event
        points.add(event.effective_at)
        if isinstance(event, ConsentGranted) and event.expires_at is not None:
            points.add(event.expires_at)
    points.update(published.effective_from for published in catalog.values())
    return sorted(p for p in points if p >= start)


def _band(start: datetime, end: datetime, decision: Decision) -> dict[str, Any]:
    return {
        "from": format_instant(start),
        "to": format_instant(end),
        "allowed": decision.allowed,
        "basis": decision.basis.value,
        "event_ids": [str(i) for i in decision.event_ids],
        "terms_version": decision.terms_version,
    }


def lane_bands(
    entries: Sequence[Entry],
    catalog: Mapping[str, TermsPublished],
    question: Question,
    points: Sequence[datetime],
    end: datetime,
) -> list[dict[str, Any]]:
    """Return a lane's bands: the answer to `question` at each of `points` (its `at`
    replaced), merged where consecutive answers agree, the last one running to `end`."""
    bands: list[dict[str, Any]] = []
    last: tuple[bool, str, tuple[str, ...]] | None = None
    for index, point in enumerate(points):
        ask = Question(
            question.subject,
            question.purpose,
            question.party,
            question.content,
            question.aspect,
            point,
            question.known_at,
        )
        decision = decide(entries, catalog, ask, 0)
        upto = points[index + 1] if index + 1 < len(points) else end
        same = (decision.allowed, decision.basis.value, tuple(map(str, decision.event_ids)))
        if same == last:
            bands[-1]["to"] = format_instant(upto)
        else:
            bands.append(_band(point, upto, decision))
        last = same
    return bands


def terms_bands(
    entries: Sequence[Entry],
    catalog: Mapping[str, TermsPublished],
    known_at: datetime,
    points: Sequence[datetime],
    end: datetime,
) -> list[dict[str, Any]]:
    """Return the terms versions in force over time, as known at `known_at`."""
    live = known_state(entries, known_at).live
    bands: list[dict[str, Any]] = []
    for index, point in enumerate(points):
        in_force = terms_in_force(live, catalog, point)
        version = in_force[1].version if in_force else None
        upto = points[index + 1] if index + 1 < len(points) else end
        if bands and bands[-1]["version"] == version:
            bands[-1]["to"] = format_instant(upto)
            continue
        bands.append(
            {
                "from": format_instant(point),
                "to": format_instant(upto),
                "version": version,
                "acceptance_event_id": str(in_force[0].event.event_id) if in_force else None,
            }
        )
    return [b for b in bands if b["version"] is not None]


def marker(entry: Entry, by_id: Mapping[str, Entry]) -> dict[str, Any]:
    """Return one event as a chart marker: where it sits, on which lanes, what it is."""
    event = entry.event
    body: dict[str, Any] = {
        "event_id": str(event.event_id),
        "type": type(event).type_name,
        "position": entry.position,
        "effective_at": format_instant(event.effective_at),
        "recorded_at": format_instant(event.recorded_at),
        "lanes": [],
    }
    if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
        body["lanes"] = [
            Lane(event.purpose, event.party, content, event.aspect).key
            for content in _scopes(event.content_ids)
        ]
    if isinstance(event, TermsAccepted):
        body["version"] = event.version
    if isinstance(event, ConsentGranted) and event.expires_at is not None:
        body["expires_at"] = format_instant(event.expires_at)
    if isinstance(event, EventVoided):
        body["voided_event_id"] = str(event.voided_event_id)
        voided = by_id.get(str(event.voided_event_id))
        if voided is not None:
            body["lanes"] = marker(voided, {})["lanes"]
    if isinstance(event, SubjectErased):
        body["all_lanes"] = True
    return body


def covering(entries: Iterable[Entry], lane: Lane, purpose: Purpose) -> list[Entry]:
    """Return the entries a lane's answers can depend on: the grants and revocations that
    cover its question (`decisions.covers`), the terms acceptances, voids and erasure.

    Deciding over these alone gives the same answer as over every entry, since no other
    grant or revocation is ever a candidate; and only their instants can change it.
    """
    probe = Question("", purpose, lane.party, lane.content, lane.aspect, EPOCH, EPOCH)
    return [
        e
        for e in entries
        if isinstance(e.event, TermsAccepted | EventVoided | SubjectErased)
        or (isinstance(e.event, ConsentGranted | ConsentRevoked) and covers(e.event, probe))
    ]


@dataclass(frozen=True)
class OverviewRequest:
    """What the overview answers: one subject, the chosen date D and knowledge time K."""

    subject: str
    at: datetime | None = None
    known_at: datetime | None = None


def subject_overview(ledger: ConsentLedger, request: OverviewRequest) -> dict[str, Any] | None:
    """Return the chart and matrix of `request` (see the module docstring), or None when
    the ledger holds no event about the subject. Raises the ledger's errors for an invalid
    subject or instant."""
    now = ledger.clock.now()
    vocabulary = ledger.vocabulary
    purposes = list(vocabulary.purposes)
    asked = ledger.question(request.subject, purposes[0], at=request.at, known_at=request.known_at)
    at, known_at = asked.at, asked.known_at
    entries = ledger.subject_entries(request.subject)
    if not entries:
        return None
    catalog = ledger.terms_catalog()
    first = min(e.event.effective_at for e in entries)
    # The axis also shows the terms publications before the subject's first event; the
    # bands start at that event.
    start = min([first, *(p.effective_from for p in catalog.values())])
    end = max(now, at, *(e.event.effective_at for e in entries)) + TAIL
    lanes = lanes_of(entries, purposes)
    lane_entries = {
        lane: covering(entries, lane, vocabulary.purpose(lane.purpose)) for lane in lanes
    }
    points = {lane: change_points(found, catalog, first) for lane, found in lane_entries.items()}
    every_point = change_points(entries, catalog, first)
    by_id = {str(e.event.event_id): e for e in entries}

    def view(knowledge: datetime) -> dict[str, Any]:
        rows = []
        for lane in lanes:
            question = Question(
                request.subject,
                vocabulary.purpose(lane.purpose),
                lane.party,
                lane.content,
                lane.aspect,
                at,
                knowledge,
            )
            bands = lane_bands(lane_entries[lane], catalog, question, points[lane], end)
            rows.append({**lane.to_json(), "bands": bands})
        state = known_state(entries, knowledge)
        return {
            "known_at": format_instant(knowledge),
            "erased": state.erasure is not None,
            "known_event_ids": [
                str(e.event.event_id) for e in entries if e.event.recorded_at <= knowledge
            ],
            "voided_event_ids": sorted(str(v) for v in state.voided),
            "lanes": rows,
            "terms": terms_bands(entries, catalog, knowledge, every_point, end),
        }

    views = [view(now)]
    if request.known_at is not None and known_at < now:
        views.append(view(known_at))
    return {
        "format": CHART_FORMAT,
        "subject": request.subject,
        "at": format_instant(at),
        "known_at": format_instant(known_at),
        "now": format_instant(now),
        "start": format_instant(start),
        "first_event_at": format_instant(first),
        "end": format_instant(end),
        "lanes": [lane.to_json() for lane in lanes],
        "views": views,
        "markers": [marker(e, by_id) for e in entries],
        "terms_publications": [
            _publication(p) for p in sorted(catalog.values(), key=lambda p: p.effective_from)
        ],
        "matrix": subject_matrix(ledger, request.subject, entries, catalog, at, known_at),
    }


def _publication(published: TermsPublished) -> dict[str, Any]:
    return {
        "event_id": str(published.event_id),
        "version": published.version,
        "effective_from": format_instant(published.effective_from),
        "recorded_at": format_instant(published.recorded_at),
        "document_sha256": published.document_sha256,
        "clauses": published.clauses,
    }


def subject_matrix(
    ledger: ConsentLedger,
    subject: str,
    entries: Sequence[Entry],
    catalog: Mapping[str, TermsPublished],
    at: datetime,
    known_at: datetime,
) -> dict[str, Any]:
    """Return every purpose x party decided at `at` as known at `known_at` (whole
    catalogue, every aspect), and the terms in force with their clauses."""
    position = ledger.ledger_position(known_at)
    parties = matrix_parties(entries)
    cells = []
    for name, purpose in ledger.vocabulary.purposes.items():
        for party in parties:
            question = Question(subject, purpose, party, None, ALL_ASPECTS, at, known_at)
            decision = decide(entries, catalog, question, position)
            cells.append({"purpose": name, "party": party, **decision.to_json()})
    in_force = terms_in_force(known_state(entries, known_at).live, catalog, at)
    return {
        "at": format_instant(at),
        "known_at": format_instant(known_at),
        "position": position,
        "parties": parties,
        "purposes": list(ledger.vocabulary.purposes),
        "cells": cells,
        "terms_in_force": None
        if in_force is None
        else {
            **_publication(in_force[1]),
            "acceptance_event_id": str(in_force[0].event.event_id),
            "accepted_effective_at": format_instant(in_force[0].event.effective_at),
        },
    }
