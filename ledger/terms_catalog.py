"""The published terms versions, read once from the store and remembered.

A publication never changes once recorded, so a version found stays found; the whole
catalogue is read incrementally from the notification log, never rescanning what it
has already looked at.
"""

from __future__ import annotations

import threading
from typing import Final
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from ledger.events import TermsPublished, terms_stream_id

CATALOG_BATCH: Final = 500


class TermsCatalog:
    """Remember terms publications: look one up by version, or list them all."""

    def __init__(self, app: Application[UUID]) -> None:
        self._app = app
        self._terms: dict[str, TermsPublished] = {}
        self._seen_up_to = 0
        self._lock = threading.Lock()

    def get(self, version: str) -> TermsPublished | None:
        """Return the publication of `version`, or None if it was never published."""
        found = self._terms.get(version)
        if found is None:
            for event in self._app.events.get(terms_stream_id(version)):
                if isinstance(event, TermsPublished):
                    self.remember(event)
                    found = event
        return found

    def remember(self, event: TermsPublished) -> None:
        """Keep a publication just recorded or read."""
        with self._lock:
            self._terms[event.version] = event

    def all(self) -> dict[str, TermsPublished]:
        """Return every published version, by version."""
        recorder = self._app.recorder
        topic = get_topic(TermsPublished)
        top = recorder.max_notification_id() or 0
        while self._seen_up_to < top:
            batch = recorder.select_notifications(
                start=self._seen_up_to + 1, limit=CATALOG_BATCH, stop=top, topics=[topic]
            )
            for notification in batch:
                event = self._app.mapper.to_domain_event(notification)
                assert isinstance(event, TermsPublished)
                self.remember(event)
            # Everything up to `top` has been looked at, terms or not: never scan it again.
            self._seen_up_to = batch[-1].id if len(batch) == CATALOG_BATCH else top
        return dict(self._terms)
