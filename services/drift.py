"""The drift check's HTTP side: fetch published pages and files, compare with the ledger.

Fetches with httpx, at most `concurrency` requests at once, each within `timeout`
seconds and the whole run within `deadline` seconds; only URLs on the origin the URL
template names (redirects are not followed, so no other host is ever asked). The
comparison itself is `projections.signals.drift`'s.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from projections.signals.content import ContentSignals
from projections.signals.drift import (
    Mismatch,
    RobotsRule,
    compare_page,
    compare_site,
    parse_tdmrep,
    robots_rules,
)
from projections.signals.service import AiSignalService
from projections.signals.sitewide import ROBOTS, TDMREP, WELL_KNOWN_PATHS
from projections.signals.urls import UrlTemplate

if TYPE_CHECKING:
    import httpx  # imported where used: every CLI verb imports this module's constants

DEFAULT_SAMPLE: Final = 100
DEFAULT_CONCURRENCY: Final = 8
DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_DEADLINE_S: Final = 120.0
USER_AGENT: Final = "consent-ledger-signals-audit/1"


@dataclass
class AuditReport:
    """What the drift check looked at and every mismatch it found."""

    pages: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON."""
        return {
            "pages": self.pages,
            "mismatches": [m.to_json() for m in self.mismatches],
            "ok": not self.mismatches,
        }


def sample_pages(
    service: AiSignalService, template: UrlTemplate, size: int, *, seed: int = 0
) -> list[tuple[str, str, ContentSignals]]:
    """Return up to `size` (url, path, expected signals) drawn evenly from every page the
    ledger has a fact about (reservoir sampling: memory holds the sample only)."""
    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    chosen: list[tuple[str, str, ContentSignals]] = []
    seen = 0
    for catalogue in service.source.catalogues():
        pages = [(None, catalogue.catalogue), *catalogue.contents]
        for content, signals in pages:
            path = template.path(catalogue.subject, content)
            item = (template.origin + path, path, signals)
            seen += 1
            if len(chosen) < size:
                chosen.append(item)
            elif (slot := rng.randrange(seen)) < size:
                chosen[slot] = item
    return chosen


async def _fetch(client: httpx.AsyncClient, gate: asyncio.Semaphore, url: str) -> httpx.Response:
    async with gate:
        return await client.get(url, headers={"Accept": "text/html", "User-Agent": USER_AGENT})


async def _audit(
    template: UrlTemplate,
    pages: list[tuple[str, str, ContentSignals]],
    *,
    concurrency: int,
    timeout: float,
) -> AuditReport:
    import httpx

    report = AuditReport(pages=len(pages))
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
    ) as client:
        robots_url = template.origin + WELL_KNOWN_PATHS[ROBOTS]
        tdmrep_url = template.origin + WELL_KNOWN_PATHS[TDMREP]
        fetches = [_fetch(client, gate, url) for url in (robots_url, tdmrep_url)]
        fetches += [_fetch(client, gate, url) for url, _, _ in pages]
        results = await asyncio.gather(*fetches, return_exceptions=True)
    robots: list[RobotsRule] | None = None
    tdmrep: list[Any] | None = None
    first, second = results[0], results[1]
    if isinstance(first, httpx.Response) and first.status_code == 200:
        robots = robots_rules(first.text)
    else:
        report.mismatches.append(_unfetched(robots_url, first))
    if isinstance(second, httpx.Response) and second.status_code == 200:
        try:
            tdmrep = parse_tdmrep(second.content)
        except ValueError as error:
            report.mismatches.append(Mismatch(tdmrep_url, "tdmrep.json", "body", str(error), None))
    else:
        report.mismatches.append(_unfetched(tdmrep_url, second))
    for (url, path, expected), result in zip(pages, results[2:], strict=True):
        if isinstance(result, httpx.Response) and result.status_code == 200:
            report.mismatches.extend(compare_page(url, result.headers, result.text, expected))
        else:
            report.mismatches.append(_unfetched(url, result))
        report.mismatches.extend(compare_site(url, path, robots, tdmrep, expected))
    return report


def _unfetched(url: str, result: httpx.Response | BaseException) -> Mismatch:
    import httpx

    served = (
        f"HTTP {result.status_code}"
        if isinstance(result, httpx.Response)
        else f"{type(result).__name__}: {result}"
    )
    return Mismatch(url, "fetch", "status", served, "HTTP 200")


def run_audit(
    service: AiSignalService,
    template: UrlTemplate,
    *,
    sample: int = DEFAULT_SAMPLE,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
    deadline: float = DEFAULT_DEADLINE_S,
    pages: Iterable[tuple[str, str, ContentSignals]] | None = None,
) -> AuditReport:
    """Fetch up to `sample` pages and the site-wide files; return every mismatch.

    Raises TimeoutError when the whole run exceeds `deadline` seconds.
    """
    chosen = list(pages) if pages is not None else sample_pages(service, template, sample)
    return asyncio.run(
        asyncio.wait_for(
            _audit(template, chosen, concurrency=max(1, concurrency), timeout=timeout), deadline
        )
    )
