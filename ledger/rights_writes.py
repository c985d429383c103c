# The methods are typed with `self: ConsentLedger`, the only class that mixes them in, so
# that they are checked against the ledger's real attributes; mypy reports that self type
# as not a supertype of the mixin (misc), which is the point of it.
# mypy: disable-error-code="misc"
"""The write use cases of BRIEF §2.1: content registrations and agents' authorities.

A mixin of `ConsentLedger` (kept apart so that the application module stays a load ->
decide -> save shell): each use case builds its command (`ledger.commands`) and executes
it through the write pipeline; a registration first checks, in the ledger's content
index, that the content has no other owner (the owner is fixed by the first one).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ledger.commands import GrantAuthority, RegisterContent, RevokeAuthority
from ledger.errors import ContentOwnerConflictError
from ledger.events import ContentRegistered
from ledger.rights import check_isrc

if TYPE_CHECKING:
    from ledger.application import ConsentLedger
    from ledger.write_pipeline import Receipt

_SCAN_BATCH = 500


@dataclass(frozen=True)
class ContentRecord:
    """What the ledger knows of a content's registrations: its owner and identifiers."""

    content_id: str
    owner: str
    isrc: str | None
    iswc: str | None


class ContentIndex:
    """Each content's first owner, latest ISRC/ISWC and contributors, read from the ledger.

    Scans only the `ContentRegistered` notifications it has not seen (like the terms
    catalogue), so the owner check of a registration costs one indexed read.
    """

    def __init__(self) -> None:
        self.by_content: dict[str, ContentRecord] = {}
        self.by_isrc: dict[str, str] = {}
        self.by_contributor: dict[str, set[tuple[str, str]]] = {}
        self.seen_up_to = 0
        self.lock = threading.Lock()

    def refresh(self, ledger: ConsentLedger) -> None:
        """Read the registrations recorded since the last refresh."""
        topic = get_topic(ContentRegistered)
        with self.lock:
            top = ledger.recorder.max_notification_id() or 0
            while self.seen_up_to < top:
                batch = ledger.recorder.select_notifications(
                    start=self.seen_up_to + 1, limit=_SCAN_BATCH, stop=top, topics=[topic]
                )
                for notification in batch:
                    event = ledger.mapper.to_domain_event(notification)
                    assert isinstance(event, ContentRegistered)
                    held = self.by_content.get(event.content_id)
                    owner = held.owner if held is not None else event.subject
                    self.by_content[event.content_id] = ContentRecord(
                        event.content_id, owner, event.isrc, event.iswc
                    )
                    if event.isrc is not None:
                        self.by_isrc[event.isrc] = event.content_id
                    for contributor in event.contributors:
                        works = self.by_contributor.setdefault(contributor["subject"], set())
                        works.add((event.subject, event.content_id))
                self.seen_up_to = batch[-1].id if len(batch) == _SCAN_BATCH else top


class RightsWrites:
    """Register works with contributors; grant and revoke agents' authority (§2.1)."""

    _content_index: ContentIndex

    def register_content(
        self: ConsentLedger,
        content_id: str,
        owner: str,
        contributors: Sequence[Mapping[str, Any]] = (),
        *,
        isrc: str | None = None,
        iswc: str | None = None,
        effective_at: datetime | None = None,
    ) -> Receipt:
        """Record a content's registration in its owner's stream."""
        return self.execute(
            self.registration(
                content_id, owner, contributors, isrc=isrc, iswc=iswc, effective_at=effective_at
            )
        )

    def registration(
        self: ConsentLedger,
        content_id: str,
        owner: str,
        contributors: Sequence[Mapping[str, Any]] = (),
        *,
        isrc: str | None = None,
        iswc: str | None = None,
        effective_at: datetime | None = None,
    ) -> RegisterContent:
        """Return the command of a registration, validated; refuse (409) a content whose
        first registration named another owner."""
        command = RegisterContent(
            subject=owner,
            content_id=content_id,
            contributors=contributors,
            isrc=isrc,
            iswc=iswc,
            effective_at=effective_at,
        )
        held = self.content(content_id)
        if held is not None and held.owner != owner:
            raise ContentOwnerConflictError(
                f"content {content_id!r} is owned by {held.owner!r} (its first registration); "
                f"it cannot be registered for {owner!r}"
            )
        return command

    def content(self: ConsentLedger, content_id: str) -> ContentRecord | None:
        """Return what the ledger knows of a content's registration, or None."""
        self._content_index.refresh(self)
        return self._content_index.by_content.get(content_id)

    def content_by_isrc(self: ConsentLedger, isrc: str) -> ContentRecord | None:
        """Return the content registered with an ISRC (any accepted spelling), or None."""
        compact = check_isrc(isrc)
        self._content_index.refresh(self)
        content_id = self._content_index.by_isrc.get(compact)
        return self._content_index.by_content.get(content_id) if content_id else None

    def works_of(
        self: ConsentLedger, contributors: Iterable[str]
    ) -> dict[str, set[tuple[str, str]]]:
        """Return, per contributor that has any, the (owner, content) of every work any
        registration names it on (one refresh of the index for all)."""
        self._content_index.refresh(self)
        held = self._content_index.by_contributor
        return {c: set(held[c]) for c in contributors if c in held}

    def grant_authority(
        self: ConsentLedger,
        subject: str,
        agent: str,
        purposes: Sequence[str] | None = None,
        *,
        expires_at: datetime | None = None,
    ) -> Receipt:
        """Record that `agent` may act for `subject` (for `purposes`; None: all)."""
        command = GrantAuthority(
            subject=subject, agent=agent, purposes=purposes, expires_at=expires_at
        )
        return self.execute(command)

    def revoke_authority(self: ConsentLedger, subject: str, agent: str) -> Receipt:
        """Record that `agent` no longer acts for `subject`; 404 if not in force."""
        return self.execute(RevokeAuthority(subject=subject, agent=agent))
