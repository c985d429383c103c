"""Run the benchmarks, each printing its table: `python -m bench [NAME ...]` (all by default).

Register a benchmark by adding its module to BENCHMARKS; the module exposes
`main(argv: list[str] | None) -> int` and is also runnable alone (`python -m bench.NAME`).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, str] = {
    "api": "bench.api",  # HTTP API: check/writes vs /healthz, group commit vs 1 tx/write (issue 4)
    "cli_start": "bench.cli_start",  # CLI start: what every verb imports (issue 9)
    "export": "bench.export",  # audit export + verify of 1M events (issue 5)
    "legal": "bench.legal",  # overview (chart + matrix), JSON and PDF dossier (issue 15)
    "projections": "bench.projections",  # read models vs replay: check, filter, rebuild (issue 3)
    "rebuild": "bench.rebuild",  # project --rebuild into shadow tables under reads (issue 12)
    "relay": "bench.relay",  # Kafka relay throughput, revocation latency, broker ceiling (issue 6)
    "snapshots": "bench.snapshots",  # snapshots, snapshot filter, CLI and Spark (issue 10)
    "writes": "bench.writes",  # write pipeline: deciders, 1 tx/write, group commit, index (issue 9)
    "topology": "bench.topology",  # leader takeover, table sizes per subject, tiles (issue 12)
    "signals": "bench.signals",  # AI signals: route vs check, 1M-subject files, lookup (issue 11)
}


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmarks (all when none is named); return the first non-zero status."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    statuses = [importlib.import_module(BENCHMARKS[name]).main([]) for name in names]
    return next((status for status in statuses if status), 0)


if __name__ == "__main__":
    sys.exit(main())
