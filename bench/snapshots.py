"""Benchmark consent snapshots beside today's per-pair read-model filter, in one run.

    python -m bench.snapshots [--subjects 1000000] [--pairs 10000000] [--skip-spark]
    python -m bench snapshots

Data: the ledger of bench.projections (per subject a terms acceptance and, for some,
content grants, catalogue revocations, open generative grants, named-party revocations),
bulk-appended into a fresh SQLite file. The Merkle log and the read models are caught up
first (a deployment's workers keep them so; their rates are in bench.export and
bench.projections).

Measured, each `consent-ledger` phase in its own child process (`os.wait4` gives its
peak RSS): `snapshot create` at a tenth of the subjects and at all of them (flat memory:
the two peaks should match), the snapshot filter in process (pyarrow, 1M-pair batches)
beside the read-model filter (`PermissionReader.filter`) on the same ledger, the CLI
Parquet-to-Parquet filter of `--pairs` candidates, and the PySpark entry point in local
mode on the same file. A probe of pairs is answered by both filters and must agree.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.projections import Generator, open_services

PURPOSE = "ai-training"
BATCH = 1 << 20


def log(message: str) -> None:
    print(f"[bench.snapshots] {message}", file=sys.stderr, flush=True)


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command in a child process; return (seconds, peak RSS MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed with exit code {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def candidates(path: Path, subjects: int, pairs: int) -> None:
    """Write `pairs` candidates (subject, content, a payload column) in record batches."""
    rng = random.Random(7)
    schema = pa.schema([("subject", pa.string()), ("content", pa.string()), ("id", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, pairs, BATCH):
            n = min(BATCH, pairs - start)
            picks = [rng.randrange(int(subjects * 1.05)) for _ in range(n)]  # 5 % unknown
            subject = [f"artist-{k:07d}" for k in picks]
            content = [f"track-{k if j % 2 else k + 1}" for j, k in enumerate(picks)]
            ids = pa.array(range(start, start + n), pa.int64())
            writer.write_batch(pa.record_batch([pa.array(subject), pa.array(content), ids],
                                               schema=schema))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.snapshots", description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--baseline-pairs", type=int, default=50_000)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-snapshots-"))
    url = f"sqlite:///{work / 'ledger.db'}"
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_DATA_DIR": str(work / "data"),
           "LEDGER_LOG_FORMAT": "json"}  # fmt: skip
    cli = [sys.executable, "-m", "services.cli.main"]
    rows: list[tuple[str, str, str, str]] = []
    try:
        services = open_services(url, work / "data")
        generator = Generator(services.ledger)
        generator.publish_terms()
        small = max(args.subjects // 10, 1)
        sizes = [small, args.subjects] if small < args.subjects else [args.subjects]
        snapshot_dir = work / "snap"
        for size in sizes:
            start = time.perf_counter()
            generator.grow(until_subjects=size)
            log(f"{generator.events:,} events for {size:,} subjects in "
                f"{time.perf_counter() - start:.0f} s; logging")  # fmt: skip
            services.log.catch_up(batch_size=5000)
            target = work / f"snap-{size}"
            seconds, rss = child([*cli, "snapshot", "create", str(target), "--purpose", PURPOSE],
                                 env)  # fmt: skip
            rows.append((f"`snapshot create`, {size:,} subjects",
                         f"{seconds:.1f} s", f"{size / seconds:,.0f} subjects/s",
                         f"peak RSS {rss:.0f} MiB"))  # fmt: skip
            snapshot_dir = target
        idle, idle_rss = child([*cli, "snapshot", "verify", str(snapshot_dir)], env)
        rows.append(("`snapshot verify` (signature, digest)", f"{idle:.1f} s", "-",
                     f"peak RSS {idle_rss:.0f} MiB"))  # fmt: skip

        log("projecting the read models for the per-pair baseline")
        services.projector.catch_up()
        from projections.snapshots.filter import SnapshotFilter
        from projections.snapshots.verify import load_table, open_snapshot

        open_snapshot(snapshot_dir)
        snapshot = SnapshotFilter(load_table(snapshot_dir))
        cand = work / "candidates.parquet"
        candidates(cand, args.subjects, args.pairs)
        table = pq.read_table(cand)
        head = table.slice(0, 5000)
        probe = list(zip(head["subject"].to_pylist(), head["content"].to_pylist(), strict=True))
        reader = services.reader
        known_at = load_manifest_known_at(snapshot_dir)
        baseline_pairs = probe * (args.baseline_pairs // len(probe) + 1)
        baseline_pairs = baseline_pairs[: args.baseline_pairs]
        start = time.perf_counter()
        per_pair = list(reader.filter(PURPOSE, baseline_pairs, known_at=known_at, at=known_at))
        baseline = len(baseline_pairs) / (time.perf_counter() - start)
        if list(snapshot.filter_pairs(baseline_pairs)) != per_pair:
            raise AssertionError("the snapshot filter and the read-model filter disagree")
        rows.append((f"read-model filter (today), {len(baseline_pairs):,} pairs, in process",
                     "-", f"{baseline:,.0f} pairs/s", "1x"))  # fmt: skip
        start = time.perf_counter()
        kept = 0
        for batch in table.to_batches(max_chunksize=BATCH):
            kept += int(pa.compute.sum(snapshot.allowed(batch.column(0), batch.column(1))).as_py())
        seconds = time.perf_counter() - start
        rate = args.pairs / seconds
        rows.append((f"snapshot filter, {args.pairs:,} pairs, in process",
                     f"{seconds:.2f} s", f"{rate:,.0f} pairs/s",
                     f"{rate / baseline:,.0f}x the read-model filter"))  # fmt: skip
        del table
        out = work / "allowed.parquet"
        seconds, rss = child([*cli, "filter", PURPOSE, "--snapshot", str(snapshot_dir),
                              "--input", str(cand), "--output", str(out)], env)  # fmt: skip
        rows.append((f"`consent-ledger filter --input/--output`, {args.pairs:,} pairs",
                     f"{seconds:.1f} s", f"{args.pairs / seconds:,.0f} pairs/s",
                     f"peak RSS {rss:.0f} MiB; {kept:,} kept"))  # fmt: skip
        if not args.skip_spark:
            spark_out = work / "spark-out"
            seconds, rss = child([sys.executable, "-m", "services.spark", "--snapshot",
                                  str(snapshot_dir), "--input", str(cand),
                                  "--output", str(spark_out)], env)  # fmt: skip
            spark_kept = pq.read_table(spark_out, columns=["id"]).num_rows
            if spark_kept != kept:
                raise AssertionError(f"Spark kept {spark_kept:,} rows, the CLI {kept:,}")
            rows.append((f"PySpark local mode (`services.spark`), {args.pairs:,} pairs",
                         f"{seconds:.1f} s", f"{args.pairs / seconds:,.0f} pairs/s",
                         "includes JVM start; driver RSS only"))  # fmt: skip
        services.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    return 0


def load_manifest_known_at(directory: Path) -> Any:
    """Return the snapshot's `known_at` (the baseline asks the very same question)."""
    from ledger.vocabulary import Vocabulary
    from projections.snapshots.verify import read_manifest, snapshot_question

    return snapshot_question(read_manifest(directory), Vocabulary()).known_at


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    """Print the rows as a Markdown table."""
    header = ("measure", "time", "rate", "note")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for index, row in enumerate([header, *rows]):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    sys.exit(main())
