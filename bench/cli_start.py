"""How long the command line takes to start: `python -m bench.cli_start [--runs N]`.

Each figure is the median over fresh processes of this machine's Python: the import of
`services.cli.main` (what every verb pays before it does anything), the modules that are
imported only by the verbs that need them (FastAPI for `serve`, kafka-python for `relay`),
and a whole `consent-ledger --help` and `check` on a one-event SQLite ledger.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = {
    "import services.cli.main": "import services.cli.main",
    "import services.settings (pydantic-settings)": "import services.settings",
    "import kafka (relay only)": "import kafka",
    "import fastapi (serve only)": "import fastapi",
}


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def _median(argv: list[str], runs: int) -> float:
    return statistics.median(_seconds(argv) for _ in range(runs))


def _loaded_by_cli() -> set[str]:
    probe = "import sys, services.cli.main; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)
    return set(out.stdout.decode().split())


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure")
    args = parser.parse_args(argv)
    baseline = _median([sys.executable, "-c", "pass"], args.runs)
    rows = [("python -c pass (interpreter start)", baseline)]
    rows += [
        (label, _median([sys.executable, "-c", code], args.runs)) for label, code in IMPORTS.items()
    ]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        cli = [sys.executable, "-m", "services.cli"]
        rows.append(("consent-ledger --help", _median([*cli, "--help"], args.runs)))
        subprocess.run(
            [*cli, "grant", "a", "ai-training", "--database-url", url],
            check=True,
            capture_output=True,
        )
        check = [*cli, "check", "a", "ai-training", "--database-url", url]
        rows.append(("consent-ledger check (SQLite, one event)", _median(check, args.runs)))
    loaded = _loaded_by_cli()
    print(f"CLI start, median of {args.runs} fresh processes (seconds, wall clock)")
    print(f"{'what':<46} {'s':>7}")
    for label, seconds in rows:
        print(f"{label:<46} {seconds:>7.3f}")
    print(
        "loaded by every verb: kafka "
        f"{'yes' if 'kafka' in loaded else 'no'}, fastapi {'yes' if 'fastapi' in loaded else 'no'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
