"""Benchmark the production topology's own costs on one PostgreSQL: takeover, sizes, tiles.

    python -m bench.topology [--subjects 20000] [--trials 3] [--database-url URL]

One run on a fresh PostgreSQL schema (dropped afterwards), measured in order:

- `append`: `--subjects` subjects, each with a terms acceptance and two grants, appended
  by `ConsentLedger.execute_many` in batches of 500 (the group-commit path): events/s.
- `project` / `log`: the read models and the Merkle log caught up over that ledger, in
  process: events/s.
- sizes: `pg_total_relation_size` of the event store, the read models (`perm_*`) and the
  log's tables, per subject and extrapolated to 1,000,000 subjects.
- `tiles export`: `LogTiles.export` of the whole log (tiles and entry bundles): leaves/s.
- takeover: two `consent-ledger worker --duties log` processes; the leader is killed
  (SIGKILL) or frozen (SIGSTOP), a write is made at once, and the time until a
  checkpoint covering it is signed (by the stand-by) is measured, `--trials` times each.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from ledger.commands import AcceptTerms, Command, Grant
from projections.tiles import LogTiles
from services.bootstrap import Services, bootstrap
from services.settings import Settings

BASE = "postgresql://postgres@127.0.0.1:5432/postgres"
MILLION = 1_000_000


def table_bytes(services: Services, pattern: str) -> int:
    """Return the total size of the schema's tables whose name matches a LIKE pattern."""
    with services.database.transaction() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE %s",
            [pattern],
        )
        return int(cursor.fetchone()[0])


def append(services: Services, subjects: int) -> tuple[int, float]:
    """Append an acceptance and two grants per subject; return (events, seconds)."""
    ledger = services.ledger
    ledger.publish_terms(
        "v1", datetime(2024, 1, 1, tzinfo=UTC), [{"purpose": "ai-training", "default": "granted"}]
    )
    started = time.perf_counter()
    pending: list[Command] = []
    events = 0
    for n in range(subjects):
        subject = f"artist-{n}"
        pending.append(AcceptTerms(subject=subject, version="v1"))
        pending.append(Grant(subject=subject, purpose="ai-generative-training", aspect="voice"))
        pending.append(Grant(subject=subject, purpose="data-mining", party="*"))
        if len(pending) >= 500:
            ledger.execute_many(pending)
            events += len(pending)
            pending = []
    if pending:
        ledger.execute_many(pending)
        events += len(pending)
    return events, time.perf_counter() - started


def ready(log: Path) -> bool:
    """Tell whether a worker logged that it leads or stands by (it has booted)."""
    return log.exists() and (
        b"duty_standby" in log.read_bytes() or b"duty_leader" in log.read_bytes()
    )


def worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start a `worker --duties log` process that checkpoints after every event."""
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_CHECKPOINT_EVERY_EVENTS": "1",
        "LEDGER_LOG_LEVEL": "info",
        "LEDGER_LOG_FORMAT": "json",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker", "--duties", "log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def leader_pid(services: Services) -> int | None:
    """Return the pid recorded by the log duty's leader."""
    row = services.leases.leaders().get("log")
    return int(row["holder"].rsplit(":", 1)[1]) if row else None


def covered(services: Services, position: int) -> bool:
    """Tell whether a signed checkpoint covers the event at `position`."""
    with services.database.transaction() as cursor:
        cursor.execute(
            "SELECT 1 FROM checkpoints WHERE tree_size >"
            " (SELECT leaf_index FROM merkle_leaves WHERE position = %s)",
            [position],
        )
        return cursor.fetchone() is not None


def takeover(
    services: Services, settings: Settings, folder: Path, trials: int
) -> dict[str, list[float]]:
    """Measure failure -> covering checkpoint, for SIGKILL and SIGSTOP of the leader."""
    logs = [folder / f"worker-{n}.log" for n in range(2)]
    workers = [worker(settings, log) for log in logs]
    times: dict[str, list[float]] = {"SIGKILL": [], "SIGSTOP": []}
    try:
        for trial, failure in enumerate([*(["SIGKILL"] * trials), *(["SIGSTOP"] * trials)]):
            receipt = services.ledger.grant("warm-up", "ai-training", party="acme")
            deadline = time.monotonic() + 60
            while (
                not covered(services, receipt.position)
                or leader_pid(services) not in [w.pid for w in workers if w.poll() is None]
                or not all(ready(log) for log in logs)  # both booted: one leads, one waits
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("no leader signs checkpoints")
                time.sleep(0.05)
            pid = leader_pid(services)
            victim = next(w for w in workers if w.pid == pid)
            victim.send_signal(getattr(signal, failure))
            failed = time.perf_counter()
            receipt = services.ledger.grant("after", "ai-training", party="acme")
            while not covered(services, receipt.position):
                if time.perf_counter() - failed > 30:
                    raise RuntimeError(f"no takeover within 30 s after {failure}")
                time.sleep(0.01)
            times[failure].append(time.perf_counter() - failed)
            victim.kill()
            victim.wait()
            index = workers.index(victim)
            logs[index] = folder / f"worker-{trial}-{index}.log"
            workers[index] = worker(settings, logs[index])
    finally:
        for w in workers:
            w.kill()
            w.wait()
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.topology")
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--database-url", default=BASE)
    args = parser.parse_args(argv)
    schema = f"bench_topology_{uuid.uuid4().hex[:8]}"
    base = args.database_url.split("?")[0]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"{base}?schema={schema}",
            data_dir=Path(folder) / "data",
            log_level="warning",
        )
        services = bootstrap(settings)
        try:
            events, append_s = append(services, args.subjects)
            started = time.perf_counter()
            services.projector.catch_up()
            project_s = time.perf_counter() - started
            started = time.perf_counter()
            services.log.catch_up()
            log_s = time.perf_counter() - started
            started = time.perf_counter()
            files = LogTiles(services.log).export(Path(folder) / "tiles")
            tiles_s = time.perf_counter() - started
            sizes = {
                "event store": table_bytes(services, "%events%"),
                "read models (perm_*)": table_bytes(services, "perm\\_%"),
                "Merkle log": table_bytes(services, "merkle\\_%")
                + table_bytes(services, "checkpoints"),
            }
            times = takeover(services, settings, Path(folder), args.trials)
        finally:
            services.close()
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"\nPostgreSQL, {args.subjects:,} subjects, {events:,} events\n")
    print("| phase          |    items | seconds |   items/s |")
    print("|----------------|----------|---------|-----------|")
    for name, items, seconds in (
        ("append", events, append_s),
        ("project", events, project_s),
        ("log catch-up", events, log_s),
        ("tiles export", events, tiles_s),
    ):
        print(f"| {name:<14} | {items:>8,} | {seconds:>7.2f} | {items / seconds:>9,.0f} |")
    print(f"\ntiles export wrote {files:,} files\n")
    print("| tables               |   MiB | bytes/subject | GiB per 1M subjects |")
    print("|----------------------|-------|---------------|---------------------|")
    for name, size in sizes.items():
        per = size / args.subjects
        mib, gib = size / 2**20, per * MILLION / 2**30
        print(f"| {name:<20} | {mib:>5.1f} | {per:>13,.0f} | {gib:>19.2f} |")
    print("\n| leader failure | trials | takeover p50 s | max s |")
    print("|----------------|--------|----------------|-------|")
    for failure, values in times.items():
        p50, worst = statistics.median(values), max(values)
        print(f"| {failure:<14} | {len(values):>6} | {p50:>14.2f} | {worst:>5.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
