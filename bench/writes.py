"""Benchmark the write pipeline: deciders alone, then load -> decide -> save on each backend.

    python -m bench.writes [--writes 2000] [--database-url URL ...]

Measured, one table row each, on a fresh SQLite file and a fresh PostgreSQL schema
(dropped afterwards) unless `--database-url` names the stores:

- `decide`: the pure decider of a Grant on an in-memory stream of 20 events (no I/O):
  µs per command; the floor under everything below.
- `1 tx/write`: `ConsentLedger.grant` one at a time (writers' lock, clock, stream
  cache, decide, seal, save, index rows): writes/s and p50/p99 per write.
- `group commit`: the same grants through `execute_many` in batches of 100: writes/s.
- `void lookup`: `find_event` by id through the event index, after all those writes:
  µs p50/p99 (was a byte scan of every stored event).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from ledger.commands import Grant
from ledger.deciders import StreamState, WriteState, decide
from ledger.events import LedgerEvent
from services.bootstrap import bootstrap
from services.settings import Settings

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_decide(count: int) -> dict[str, str]:
    """Return µs per decided Grant on a 20-event stream."""
    state = StreamState(uuid.uuid4())
    for _ in range(20):
        event: LedgerEvent = decide(
            WriteState(state), Grant(subject="a", purpose="ai-training"), NOW
        )
        state.events.append(event)
    commands = [
        Grant(subject="a", purpose="ai-training", content_ids=[f"t{n}"]) for n in range(count)
    ]
    view = WriteState(state)
    began = time.perf_counter()
    for command in commands:
        decide(view, command, NOW)
    per = (time.perf_counter() - began) / count * 1e6
    return {
        "what": "decide (pure)",
        "writes": f"{count}",
        "rate": f"{1e6 / per:,.0f}/s",
        "p50": f"{per:.1f} µs",
        "p99": "-",
    }


def measure_store(url: str, label: str, count: int) -> list[dict[str, str]]:
    """Return the rows for one store: 1 tx/write, group commit, void lookup."""
    with tempfile.TemporaryDirectory() as data:
        services = bootstrap(Settings(database_url=url, data_dir=Path(data)))
        ledger = services.ledger
        try:
            latencies: list[float] = []
            ids = []
            began = time.perf_counter()
            for n in range(count):
                start = time.perf_counter()
                ids.append(ledger.grant(f"artist-{n % 200}", "ai-training").event_id)
                latencies.append(time.perf_counter() - start)
            single = count / (time.perf_counter() - began)
            commands = [
                Grant(subject=f"artist-{n % 200}", purpose="data-mining") for n in range(count)
            ]
            began = time.perf_counter()
            for start in range(0, count, 100):
                ledger.execute_many(commands[start : start + 100])
            grouped = count / (time.perf_counter() - began)
            lookups: list[float] = []
            for event_id in ids[:: max(1, count // 500)]:
                start = time.perf_counter()
                assert ledger.find_event(event_id) is not None
                lookups.append(time.perf_counter() - start)
        finally:
            services.close()
    return [
        {
            "what": f"{label}: 1 tx/write",
            "writes": f"{count}",
            "rate": f"{single:,.0f}/s",
            "p50": f"{statistics.median(latencies) * 1e3:.2f} ms",
            "p99": f"{_pct(latencies, 0.99) * 1e3:.2f} ms",
        },
        {
            "what": f"{label}: group commit (100)",
            "writes": f"{count}",
            "rate": f"{grouped:,.0f}/s",
            "p50": "-",
            "p99": "-",
        },
        {
            "what": f"{label}: void lookup (index)",
            "writes": f"{2 * count} in ledger",
            "rate": "-",
            "p50": f"{statistics.median(lookups) * 1e6:.0f} µs",
            "p99": f"{_pct(lookups, 0.99) * 1e6:.0f} µs",
        },
    ]


def print_table(rows: list[dict[str, str]]) -> None:
    """Print the rows as a Markdown table."""
    columns = ["what", "writes", "rate", "p50", "p99"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |")
    print("| " + " | ".join("-" * widths[c] for c in columns) + " |")
    for row in rows:
        print("| " + " | ".join(row[c].ljust(widths[c]) for c in columns) + " |")


def main(argv: list[str] | None = None) -> int:
    """Run the write-pipeline benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.writes")
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--database-url", action="append", default=[])
    args = parser.parse_args(argv)
    rows = [measure_decide(20_000)]
    with tempfile.TemporaryDirectory() as tmp:
        urls = args.database_url or [f"sqlite:///{tmp}/bench.db", ""]
        for url in urls:
            if url == "":
                schema = f"bench_writes_{uuid.uuid4().hex[:8]}"
                try:
                    rows += measure_store(
                        f"{DEFAULT_POSTGRES}?schema={schema}", "PostgreSQL", args.writes
                    )
                finally:
                    with psycopg.connect(DEFAULT_POSTGRES, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            else:
                label = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
                rows += measure_store(url, label, args.writes)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
