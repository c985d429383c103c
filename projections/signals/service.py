"""The AI-signals use cases: a page's signals, bulk lookup, site-wide files, evidence.

One object per deployment, wired by the composition root. Site-wide files are generated
into a spool folder in one pass over the read models (flat memory), hashed while written,
and reused while the ledger has not moved (and for at most `max_age_seconds`, so that a
consent scheduled to take effect later shows up without a new event).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from ledger.decisions import Decision
from ledger.errors import ErrorKind, InvalidInputError, LedgerError
from ledger.instants import format_instant
from projections.database import Database
from projections.reader import PermissionReader
from projections.signals.content import ContentSignals, SignalRenderer
from projections.signals.published import PublishReport, SignalsPublisher, signals_history
from projections.signals.sitewide import FILES, RSL, WELL_KNOWN_PATHS, lines, write_files
from projections.signals.source import PageAnswer, SignalSource
from projections.signals.urls import Page, UrlTemplate

MAX_LOOKUP_URLS: Final = 10_000
NO_PREFERENCE_KNOWN: Final = "no preference known"
DEFAULT_MAX_AGE_SECONDS: Final = 300.0


class SignalsNotConfiguredError(LedgerError):
    """Refuse a site-wide answer when no content URL template is configured."""

    kind = ErrorKind.NOT_FOUND
    title = "No content URL template"


class LookupTooLargeError(InvalidInputError):
    """Refuse a bulk lookup of more than MAX_LOOKUP_URLS URLs."""

    title = "Lookup batch too large"


@dataclass(frozen=True)
class SiteFile:
    """One generated site-wide file: where it is, its digest, size and change time."""

    name: str
    path: Path
    sha256: str
    size: int
    last_modified: datetime  # when these bytes were first generated

    @property
    def etag(self) -> str:
        """Return the strong ETag of the bytes."""
        return f'"{self.sha256}"'


@dataclass(frozen=True)
class SiteFiles:
    """The three site-wide files as of one ledger position."""

    position: int
    generated_at: datetime
    files: dict[str, SiteFile]


class _HashingWriter:
    """A binary sink that hashes and counts what it writes."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)


class AiSignalService:
    """Answer the AI-signals routes and verbs for one deployment."""

    def __init__(
        self,
        reader: PermissionReader,
        database: Database,
        *,
        tdm_policy_url: str | None = None,
        template: str | None = None,
        spool_dir: Path | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.reader = reader
        self.database = database
        self.spool_dir = spool_dir
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._site: SiteFiles | None = None
        self._site_monotonic = 0.0
        self._changed: dict[str, tuple[str, datetime]] = {}
        self.tdm_policy_url: str | None = None
        self.template_text: str | None = None
        self.template: UrlTemplate | None = None
        self.configure(tdm_policy_url, template)

    def configure(self, tdm_policy_url: str | None, template: str | None) -> AiSignalService:
        """Use this TDM policy URL and URL template (cheap when unchanged); return self.

        Raises InvalidUrlTemplateError for a template without `{subject}` or not a URL.
        """
        if (tdm_policy_url, template) == (self.tdm_policy_url, self.template_text) and hasattr(
            self, "source"
        ):
            return self
        parsed = UrlTemplate.parse(template) if template is not None else None
        renderer = SignalRenderer(self.reader.ledger.vocabulary, tdm_policy_url=tdm_policy_url)
        self.tdm_policy_url, self.template_text, self.template = tdm_policy_url, template, parsed
        self.renderer = renderer
        self.source = SignalSource(self.reader, renderer)
        self.publisher = SignalsPublisher(self.reader.ledger, self.database, self.source)
        self._site = None
        return self

    # ------------------------------------------------------------------ pages

    def page(
        self, subject: str, content: str | None, *, min_position: int | None = None
    ) -> PageAnswer:
        """Return the decisions and signals of one content (or catalogue, content None)."""
        return self.source.page(Page(subject, content), min_position=min_position)

    def lookup(self, urls: Sequence[object], *, min_position: int | None = None) -> dict[str, Any]:
        """Answer up to MAX_LOOKUP_URLS URLs: each one's decisions and vocabulary values.

        A URL the template does not name answers "no preference known". Raises
        LookupTooLargeError beyond the limit and MalformedUrlError (naming its index) for
        a text that is not an absolute http(s) URL; then nothing is answered.
        """
        template = self._template()
        if len(urls) > MAX_LOOKUP_URLS:
            raise LookupTooLargeError(
                f"a lookup takes at most {MAX_LOOKUP_URLS} URLs, got {len(urls)}"
            )
        pages: list[Page | None] = []
        for index, url in enumerate(urls):
            try:
                pages.append(template.page(url))  # type: ignore[arg-type]
            except InvalidInputError as error:
                raise type(error)(f"urls[{index}]: {error.detail}") from None
        known = [p for p in pages if p is not None]
        answers, position = self.source.pages(known, min_position=min_position)
        found = iter(answers)
        # Pages share decisions and signals: render each once.
        shown: dict[Decision, dict[str, Any]] = {}
        bodies: dict[int, dict[str, object]] = {}
        results: list[dict[str, Any]] = []
        for url, page in zip(urls, pages, strict=True):
            if page is None:
                results.append({"url": url, "known": False, "status": NO_PREFERENCE_KNOWN})
                continue
            answer = next(found)
            results.append(
                {
                    "url": url,
                    "known": True,
                    "subject": page.subject,
                    "content": page.content,
                    "decisions": {
                        purpose: shown.get(d) or shown.setdefault(d, _decision_json(d))
                        for purpose, d in answer.decisions.items()
                    },
                    "signals": bodies.get(id(answer.signals))
                    or bodies.setdefault(id(answer.signals), _lookup_signals(answer.signals)),
                }
            )
        return {"position": position, "vocabularies": self.renderer.versions, "results": results}

    # ------------------------------------------------------------ whole site

    def site_files(self) -> SiteFiles:
        """Return the site-wide files, generated anew if the ledger moved or they aged."""
        with self._lock:
            head = self.reader.ledger.ledger_position()
            site = self._site
            fresh = time.monotonic() - self._site_monotonic < self.max_age_seconds
            if site is not None and site.position == head and fresh:
                return site
            folder = self.spool_dir or Path(tempfile.gettempdir()) / f"ledger-signals-{os.getpid()}"
            folder.mkdir(parents=True, exist_ok=True)
            site = self._generate(folder, head, suffix=".new")
            for file in site.files.values():
                os.replace(file.path, folder / file.name)
            self._site = SiteFiles(
                site.position,
                site.generated_at,
                {
                    name: SiteFile(name, folder / name, f.sha256, f.size, f.last_modified)
                    for name, f in site.files.items()
                },
            )
            self._site_monotonic = time.monotonic()
            return self._site

    def export(self, directory: Path) -> SiteFiles:
        """Write robots.txt, tdmrep.json and rsl.xml into `directory`; return their digests."""
        directory.mkdir(parents=True, exist_ok=True)
        return self._generate(directory, self.reader.ledger.ledger_position(), suffix="")

    def _generate(self, folder: Path, position: int, *, suffix: str) -> SiteFiles:
        template = self._template()
        now = datetime.now(UTC)
        handles = {name: (folder / f"{name}{suffix}").open("wb") for name in FILES}
        writers = {name: _HashingWriter(handle) for name, handle in handles.items()}
        try:
            default = self.source.default()
            paths = lines(template, default, self.source.catalogues())
            versions = ", ".join(f"{k} {v}" for k, v in self.renderer.versions.items())
            write_files(
                writers,  # type: ignore[arg-type]
                paths,
                comment=f"AI-usage signals from Consent Ledger position {position}; {versions}",
                license_url=template.origin + WELL_KNOWN_PATHS[RSL],
            )
        finally:
            for handle in handles.values():
                handle.close()
        files: dict[str, SiteFile] = {}
        for name, writer in writers.items():
            digest = writer.hash.hexdigest()
            previous = self._changed.get(name)
            changed = previous[1] if previous is not None and previous[0] == digest else now
            self._changed[name] = (digest, changed)
            files[name] = SiteFile(name, folder / f"{name}{suffix}", digest, writer.size, changed)
        return SiteFiles(position, now, files)

    def _template(self) -> UrlTemplate:
        if self.template is None:
            raise SignalsNotConfiguredError(
                "LEDGER_CONTENT_URL_TEMPLATE is not set: URLs cannot be mapped to content"
            )
        return self.template

    # ------------------------------------------------------------ evidence

    def publish(self) -> PublishReport:
        """Record SignalsPublished for every page whose signals changed since the last run."""
        return self.publisher.run_once()

    def history(
        self, subject: str, content: str | None = None, *, at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Return what was published for a subject's pages (or one page), optionally at `at`."""
        return signals_history(self.reader.ledger.subject_entries(subject), content=content, at=at)


def _lookup_signals(signals: ContentSignals) -> dict[str, object]:
    """Return a page's JSON body without what the lookup answer states once for all
    (`vocabularies`) or twice (`cawg_assertion` repeats `training_mining`)."""
    body = signals.statement()
    del body["vocabularies"], body["cawg_assertion"]
    return body


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "basis": str(decision.basis),
        "event_ids": [str(e) for e in decision.event_ids],
    }


def manifest(site: SiteFiles, versions: dict[str, str]) -> dict[str, Any]:
    """Return the JSON that `signals export` writes beside the files."""
    return {
        "position": site.position,
        "generated_at": format_instant(site.generated_at),
        "vocabularies": versions,
        "files": {name: {"sha256": f.sha256, "size": f.size} for name, f in site.files.items()},
    }
