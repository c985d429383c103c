"""Benchmark `project --rebuild` into shadow tables: its rate, the swap, and reads meanwhile.

    python -m bench rebuild                      # SQLite 200k events, PostgreSQL 100k
    python -m bench.rebuild --events 50000 --skip-postgres

The ledger is filled through the bulk path of `bench.projections` and projected; then a
reader thread asks `check`-style questions straight from the read models (no replay)
while `Projector.rebuild` fills the shadow tables and swaps them in. Reported: the
rebuild's rate and wall time, how long the swap transaction took, read latency while
idle and during the rebuild, and how many reads found an answer other than before
(must be 0: readers never see an empty or partial view).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.projections import Generator, open_services

HEADER = ("backend", "events", "rebuild", "swap", "read p50 idle", "read p50 / p99 rebuilding",
          "reads during rebuild", "changed answers")  # fmt: skip


def questions(services: Any, subjects: int, count: int) -> list[Any]:
    """Return `count` validated questions about random subjects (seeded)."""
    rng = random.Random(7)
    ledger = services.ledger
    return [
        ledger.question(f"artist-{rng.randrange(subjects):07d}", "ai-training", "platform",
                        None, "all", None, None)
        for _ in range(count)
    ]  # fmt: skip


def answer(services: Any, question: Any) -> tuple[bool, str]:
    """Answer from the read models as they stand."""
    decision = services.reader.answer(question, known_at_given=False)
    return decision.allowed, str(decision.basis)


def measure(name: str, url: str, events: int, workdir: Path) -> tuple[str, ...]:
    """Fill, project, then rebuild under reads; return one table row."""
    from projections.runner import Projector

    services = open_services(url, workdir / "data")
    try:
        generator = Generator(services.ledger)
        generator.publish_terms()
        generator.grow(until_events=events)
        services.projector.catch_up()
        asked = questions(services, generator.subjects, 500)
        want = [answer(services, q) for q in asked]
        idle = []
        for q in asked:
            start = time.perf_counter()
            answer(services, q)
            idle.append((time.perf_counter() - start) * 1e6)
        done = threading.Event()
        busy: list[float] = []
        changed = [0]

        def read() -> None:
            index = 0
            while not done.is_set():
                start = time.perf_counter()
                got = answer(services, asked[index % len(asked)])
                busy.append((time.perf_counter() - start) * 1e6)
                changed[0] += got != want[index % len(asked)]
                index += 1

        reader = threading.Thread(target=read)
        projector = Projector(services.ledger, services.projector.model)
        swap_seconds = [0.0]
        view = services.projector.view
        swap_in = view.swap_in

        def timed_swap(shadow: Any) -> bool:
            start = time.perf_counter()
            try:
                return bool(swap_in(shadow))
            finally:
                swap_seconds[0] = time.perf_counter() - start

        view.swap_in = timed_swap
        reader.start()
        start = time.perf_counter()
        position = projector.rebuild()
        seconds = time.perf_counter() - start
        done.set()
        reader.join()
        quantiles = statistics.quantiles(busy, n=100)
        return (
            name,
            f"{position:,}",
            f"{seconds:.1f} s ({position / seconds:,.0f} events/s)",
            f"{swap_seconds[0] * 1000:.0f} ms",
            f"{statistics.median(idle):,.0f} µs",
            f"{statistics.median(busy):,.0f} / {quantiles[98]:,.0f} µs",
            f"{len(busy):,}",
            str(changed[0]),
        )
    finally:
        services.close()


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print the rows as a Markdown table."""
    table = [HEADER, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    for index, row in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main(argv: list[str] | None = None) -> int:
    """Run the rebuild benchmark on SQLite (and PostgreSQL) and print its table; return 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--pg-events", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEDGER_TEST_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    rows = []
    try:
        rows.append(measure("SQLite", f"sqlite:///{workdir / 'ledger.db'}", args.events,
                            workdir / "sqlite"))  # fmt: skip
        if not args.skip_postgres:
            import psycopg

            schema = f"bench_rebuild_{uuid.uuid4().hex[:8]}"
            base = args.postgres_url.split("?")[0]
            try:
                rows.append(measure("PostgreSQL", f"{base}?schema={schema}", args.pg_events,
                                    workdir / "postgres"))  # fmt: skip
            finally:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nShadow rebuild under reads ({os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]})\n")  # fmt: skip
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
