"""As-served evidence: a `SignalsPublished` event each time a page's signals change.

`SignalsPublisher` follows the ledger from its own tracking position. An entry that can
change what crawlers are told — a grant, revocation or expiry for party `*` of a purpose
some vocabulary maps, a void, an erasure — names the pages it touches: the contents it
names, or the catalogue and every content of that subject already published. For each
such page the publisher renders the signals as they stand now and, if the SHA-256 of
their outputs differs from the last one recorded for that page, appends
`SignalsPublished` to the subject's stream (a Merkle leaf like every event). Changes are
recorded, not requests; running the publisher twice records nothing twice.

Who runs it: `consent-ledger signals publish` (once, or `--follow` as a worker duty beside
`consent-ledger project`). Its table `sig_published` holds the last digest per page and
is rebuilt from the ledger's own SignalsPublished events when replayed from zero.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from ledger.application import ConsentLedger, Receipt
from ledger.commands import PublishSignals
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    EventVoided,
    SignalsPublished,
    SubjectErased,
)
from ledger.instants import format_instant
from ledger.vocabulary import ANY_THIRD_PARTY
from projections.database import Database
from projections.signals.content import ContentSignals
from projections.signals.source import SignalSource
from projections.signals.urls import Page

CATALOGUE_SCOPE: Final = ""  # the `scope` of a catalogue in `sig_published`
TRACKING: Final = "signals-publisher"
BATCH: Final = 1000

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS sig_published ("
    " subject TEXT NOT NULL, scope TEXT NOT NULL, digest TEXT NOT NULL,"
    " position BIGINT NOT NULL, PRIMARY KEY (subject, scope))",
    "CREATE TABLE IF NOT EXISTS sig_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
)


def page_digest(signals: ContentSignals) -> str:
    """Return one SHA-256 over every output's digest: equal iff every output is equal."""
    return hashlib.sha256(orjson.dumps(signals.digests(), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class PublishReport:
    """What one run of the publisher did."""

    position: int  # the ledger position it has followed up to
    examined: int  # pages whose signals were rendered
    published: list[Receipt]  # the SignalsPublished events it appended


class SignalsPublisher:
    """Record `SignalsPublished` when a page's signals change (see the module docstring)."""

    def __init__(self, ledger: ConsentLedger, database: Database, source: SignalSource) -> None:
        self.ledger = ledger
        self.database = database
        self.source = source
        self._purposes = frozenset(source.renderer.purposes)

    def ensure_tables(self) -> None:
        """Create the publisher's tables if they do not exist (once per process)."""
        self.database.create_tables("signals-publisher", _DDL)

    def position(self) -> int:
        """Return the ledger position the publisher has followed up to."""
        self.ensure_tables()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql("SELECT position FROM sig_tracking WHERE name = ?"), [TRACKING]
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def run_once(self, *, limit: int | None = None) -> PublishReport:
        """Follow the ledger to its head (or `limit` entries); publish what changed."""
        self.ensure_tables()
        after = self.position()
        examined = 0
        published: list[Receipt] = []
        done = 0
        while limit is None or done < limit:
            entries = self.ledger.entries_after(after, BATCH)
            if not entries:
                break
            pages = self._pages(entries)
            examined += len(pages)
            published.extend(self._publish(pages))
            after = entries[-1].position
            done += len(entries)
            self._track(after)
        return PublishReport(after, examined, published)

    # ------------------------------------------------------------------ steps

    def _pages(self, entries: Iterable[Entry]) -> list[Page]:
        """Return the pages the entries may have changed, once each, in first-seen order."""
        pages: dict[Page, None] = {}
        whole: set[str] = set()
        for entry in entries:
            event = entry.event
            if isinstance(event, SignalsPublished):
                self._remember(event.subject, event.content, event.digests, entry.position)
                continue
            if isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired):
                if (
                    event.party != ANY_THIRD_PARTY
                    or event.purpose not in self._purposes
                    or getattr(event, "model", None) is not None  # signals ask without one
                ):
                    continue
                if event.content_ids:
                    for content in event.content_ids:
                        pages[Page(event.subject, content)] = None
                else:
                    whole.add(event.subject)
            elif isinstance(event, EventVoided | SubjectErased):
                whole.add(event.subject)
        for subject in sorted(whole):
            pages[Page(subject, None)] = None
            for content in self._published_contents(subject):
                pages[Page(subject, content)] = None
        return list(pages)

    def _publish(self, pages: list[Page]) -> list[Receipt]:
        if not pages:
            return []
        answers, _ = self.source.pages(pages)
        last = self._digests(pages)
        receipts: list[Receipt] = []
        for answer in answers:
            page = answer.page
            digest = page_digest(answer.signals)
            if last.get((page.subject, page.content or CATALOGUE_SCOPE)) == digest:
                continue
            receipt = self._append(page, answer.signals)
            receipts.append(receipt)
            self._store(page.subject, page.content, digest, receipt.position)
        return receipts

    def _append(self, page: Page, signals: ContentSignals) -> Receipt:
        command = PublishSignals(
            subject=page.subject,
            content=page.content,
            digests=signals.digests(),
            vocabularies=dict(signals.versions),
            signals=signals.statement(),
        )
        return self.ledger.execute(command)

    # ------------------------------------------------------------------ table

    def _remember(
        self, subject: str, content: str | None, digests: dict[str, str], position: int
    ) -> None:
        digest = hashlib.sha256(orjson.dumps(digests, option=orjson.OPT_SORT_KEYS)).hexdigest()
        self._store(subject, content, digest, position)

    def _store(self, subject: str, content: str | None, digest: str, position: int) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "INSERT INTO sig_published (subject, scope, digest, position) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (subject, scope) DO UPDATE SET "
                    "digest = excluded.digest, position = excluded.position "
                    "WHERE excluded.position > sig_published.position"
                ),
                [subject, content or CATALOGUE_SCOPE, digest, position],
            )

    def _digests(self, pages: list[Page]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        subjects = sorted({p.subject for p in pages})
        with self.database.transaction() as cursor:
            for start in range(0, len(subjects), 500):
                chunk = subjects[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                cursor.execute(
                    self.database.sql(
                        "SELECT subject, scope, digest FROM sig_published "
                        f"WHERE subject IN ({marks})"
                    ),
                    chunk,
                )
                for row in cursor.fetchall():
                    found[(row[0], row[1])] = row[2]
        return found

    def _published_contents(self, subject: str) -> list[str]:
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "SELECT scope FROM sig_published WHERE subject = ? AND scope <> '' "
                    "ORDER BY scope"
                ),
                [subject],
            )
            return [row[0] for row in cursor.fetchall()]

    def _track(self, position: int) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "INSERT INTO sig_tracking (name, position) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                ),
                [TRACKING, position],
            )


def signals_history(
    entries: Iterable[Entry], *, content: str | None = None, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Return a subject's SignalsPublished events as JSON, oldest first.

    With `content`, only that page's (`"-"`: the catalogue's). With `at`, only the event
    in force at `at` for each page: the latest recorded by then.
    """
    rows: dict[str | None, list[dict[str, Any]]] = {}
    for entry in entries:
        event = entry.event
        if not isinstance(event, SignalsPublished):
            continue
        page = event.content
        if content is not None and page != (None if content == "-" else content):
            continue
        if at is not None and event.recorded_at > at:
            continue
        rows.setdefault(page, []).append(
            {
                "event_id": str(event.event_id),
                "position": entry.position,
                "recorded_at": format_instant(event.recorded_at),
                "subject": event.subject,
                "content": page,
                "digests": event.digests,
                "vocabularies": event.vocabularies,
                "signals": event.signals,
            }
        )
    if at is not None:
        rows = {page: found[-1:] for page, found in rows.items()}
    return sorted(
        (row for found in rows.values() for row in found), key=lambda row: row["position"]
    )
