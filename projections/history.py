"""Present the ledger's answers as JSON, the same way for every entrypoint (CLI and HTTP).

A presenter turns a use case's value into the JSON object that `--json` prints and the
HTTP API answers, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.application import HistoryItem
from ledger.events import AuthorityGranted, ConsentGranted, ConsentRevoked, TermsAccepted
from ledger.instants import format_instant

DEFAULT_HISTORY_PAGE = 1000
"""Events per history page when the caller names no limit."""

_EVENT_FIELDS = (
    "version",
    "purpose",
    "party",
    "content_ids",
    "aspect",
    "reason",
    "effective_from",
    "clauses",
    "document_sha256",
    # BRIEF §2.1
    "model",
    "conditions",
    "content_id",
    "contributors",
    "isrc",
    "iswc",
    "agent",
    "purposes",
)


def history_json(item: HistoryItem) -> dict[str, Any]:
    """Return one history item as the CLI and HTTP API show it."""
    event = item.entry.event
    body: dict[str, Any] = {
        "event_id": str(event.event_id),
        "type": type(event).type_name,
        "position": item.entry.position,
        "recorded_at": format_instant(event.recorded_at),
        "effective_at": format_instant(event.effective_at),
    }
    for name in _EVENT_FIELDS:
        if hasattr(event, name):
            value = getattr(event, name)
            body[name] = format_instant(value) if hasattr(value, "tzinfo") else value
    if isinstance(event, ConsentGranted | AuthorityGranted):
        body["expires_at"] = format_instant(event.expires_at) if event.expires_at else None
    for name in ("voided_event_id", "grant_event_id"):
        if hasattr(event, name):
            body[name] = str(getattr(event, name))
    if isinstance(event, TermsAccepted | ConsentGranted | ConsentRevoked):
        body["evidence"] = item.evidence
        # Who acted (BRIEF §2.1): the subject unless an agent acted for it.
        body["actor"] = event.actor or event.subject
    body["voided_by"] = str(item.voided_by) if item.voided_by else None
    return body


def history_page(
    subject: str,
    items: Sequence[HistoryItem],
    *,
    after: int = 0,
    limit: int = DEFAULT_HISTORY_PAGE,
) -> dict[str, Any]:
    """Return `{"subject", "events", "next"}`: the items after position `after`, at most `limit`.

    Requires `items` in ledger order and `limit >= 1`. `next` is the `after` that asks for
    the following page, or None when this page holds the last item.
    """
    if limit < 1:
        raise ValueError(f"history page limit must be at least 1, got {limit}")
    remaining = [item for item in items if item.entry.position > after]
    page = remaining[:limit]
    more = len(remaining) > len(page)
    return {
        "subject": subject,
        "events": [history_json(item) for item in page],
        "next": page[-1].entry.position if more and page else None,
    }


DEFAULT_SUBJECT_PAGE = 20
"""Subjects per page of a subject search when the caller names no limit."""
MAX_SUBJECT_PAGE = 1000


def subject_page(found: Sequence[str], limit: int) -> dict[str, Any]:
    """Return `{"subjects", "next"}` from up to `limit + 1` subjects found in id order.

    `next` is the `after` that asks for the following page, or None at the end.
    """
    page = list(found[:limit])
    return {"subjects": page, "next": page[-1] if len(found) > limit and page else None}
