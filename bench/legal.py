"""Benchmark the legal team's reads: the overview (chart and matrix) and the court PDF.

    python -m bench.legal [--events 10,100,1000] [--repeat 5]

For one subject with N events (alternating grants and revocations of three purposes and
parties, two terms acceptances), on SQLite: the time to compute the overview
(`projections.timeline_chart.subject_overview`, every band decided by the one decision
function), the JSON dossier (with proofs), and the PDF (headless Chromium, JSON attached).
Prints one table; the PDF column is skipped without Chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from projections.dossier import DossierRequest, build_dossier
from projections.timeline_chart import OverviewRequest, subject_overview
from services.bootstrap import Services, bootstrap
from services.dossier_pdf import PdfRenderError, render_dossier_pdf
from services.settings import Settings

PURPOSES = ("ai-training", "data-mining", "ai-generative-training")
PARTIES = ("platform", "*", "crawlbot")
CLAUSES = [{"purpose": "ai-training", "default": "granted"}]


def load(services: Services, subject: str, events: int) -> None:
    """Record `events` facts about `subject`, spread over two years."""
    ledger = services.ledger
    start = datetime(2024, 1, 1, tzinfo=UTC)
    if ledger.terms("b-2024") is None:
        ledger.publish_terms("b-2024", start, CLAUSES)
    ledger.accept_terms(subject, "b-2024", effective_at=start)
    step = timedelta(days=730) / max(events, 1)
    for n in range(events):
        at = start + step * (n + 1)
        purpose, party = PURPOSES[n % 3], PARTIES[(n // 3) % 3]
        if n % 2 == 0:
            ledger.grant(subject, purpose, party=party, effective_at=at)
        else:
            ledger.revoke(subject, purpose, party=party, effective_at=at)


def timed(run: Callable[[], object], repeat: int) -> float:
    """Return the median wall time of `run` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.legal")
    parser.add_argument("--events", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.events.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        services = bootstrap(
            Settings(database_url=f"sqlite:///{root / 'l.db'}", data_dir=root / "data")
        )
        try:
            print("| events | lanes | overview ms | JSON dossier ms | PDF ms | PDF KiB |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: |")
            for size in sizes:
                subject = f"bench-{size}"
                load(services, subject, size)
                request = DossierRequest(subject, purposes=("ai-training",))
                overview = subject_overview(services.ledger, OverviewRequest(subject))
                assert overview is not None
                lanes = len(overview["lanes"])
                asked = OverviewRequest(subject)
                ms_overview = timed(partial(subject_overview, services.ledger, asked), args.repeat)
                ms_json = timed(
                    partial(build_dossier, services.ledger, services.log, request), args.repeat
                )
                dossier = build_dossier(services.ledger, services.log, request)
                try:
                    started = time.perf_counter()
                    pdf = render_dossier_pdf(dossier)
                    ms_pdf, kib = f"{(time.perf_counter() - started) * 1000:.0f}", len(pdf) // 1024
                except PdfRenderError:
                    ms_pdf, kib = "n/a", 0
                print(
                    f"| {size} | {lanes} | {ms_overview:.1f} | {ms_json:.1f} | {ms_pdf} | {kib} |"
                )
        finally:
            services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
