"""Benchmark the audit export: log catch-up, export and offline verify, beside plain SHA-256.

    python -m bench.export [--events 1000000] [--database-url URL]

Events are generated through a bulk path: real ledger events (grants, revocations and
terms acceptances with sealed-evidence blobs of the real shape and size) appended with
`ConsentLedger.save` in batches of 1000, skipping the use cases' per-write validation and
the per-subject key lookups, which are not what is measured here. Each measured phase
runs in its own child process, so its peak RSS (ru_maxrss) is its own; the `idle` row is
a child that only bootstraps the services, the floor every phase's RSS includes.
The `sha256` rows hash the very bytes of events.jsonl in the same run: one leaf hash per
line (the floor of any verifier), and the file in one call. `verify, per proof` is the
record check of issue 5 (every inclusion proof folded up to the root), which verify now
runs only to name the first bad line, measured beside the one-pass verify. The last line
prints verify's rate over `sha256 per line` (issue 14's ratio).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    TermsAccepted,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)

if TYPE_CHECKING:
    from services.bootstrap import Services

SAVE_BATCH = 1000
EVENTS_PER_SUBJECT = 10


def generate(url: str, data_dir: Path, events: int) -> float:
    """Append `events` ledger events in bulk; return the seconds it took."""
    from services.bootstrap import bootstrap
    from services.settings import Settings

    services = bootstrap(Settings(database_url=url, data_dir=data_dir, log_format="json"))
    ledger = services.ledger
    start = time.perf_counter()
    now = datetime(2025, 5, 14, tzinfo=UTC)
    terms = TermsPublished(
        originator_id=terms_stream_id("2025-05"),
        originator_version=1,
        timestamp=now,
        event_id=uuid4(),
        effective_at=now,
        version="2025-05",
        effective_from=now,
        clauses=[{"purpose": "ai-training", "default": "denied"}],
        document_sha256=None,
    )
    batch: list[Any] = [terms]
    for n in range(1, events):
        subject = f"artist-{(n - 1) // EVENTS_PER_SUBJECT}"
        version = (n - 1) % EVENTS_PER_SUBJECT + 1
        moment = now + timedelta(microseconds=n)
        base: dict[str, Any] = {
            "originator_id": subject_stream_id(subject),
            "originator_version": version,
            "timestamp": moment,
            "event_id": uuid4(),
            "effective_at": moment,
            "subject": subject,
        }
        kind = version % 3
        if kind == 1:
            batch.append(TermsAccepted(version="2025-05", evidence=_evidence(), **base))
        elif kind == 2:
            batch.append(
                ConsentGranted(
                    purpose="ai-generative-training",
                    party="platform",
                    content_ids=None,
                    aspect="voice",
                    expires_at=None,
                    evidence=_evidence(),
                    **base,
                )
            )
        else:
            batch.append(
                ConsentRevoked(
                    purpose="ai-training",
                    party="*",
                    content_ids=[f"track-{n}"],
                    aspect="all",
                    reason=None,
                    evidence=None,
                    **base,
                )
            )
        if len(batch) >= SAVE_BATCH:
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)
    seconds = time.perf_counter() - start
    services.close()
    return seconds


def _evidence() -> dict[str, Any]:
    """Return evidence shaped as the ledger seals it (ip, user agent, email sealed)."""
    return {
        "channel": "web",
        "method": "settings-toggle",
        "sealed": {
            "alg": "AES-256-GCM",
            "nonce": base64.b64encode(os.urandom(12)).decode(),
            "ciphertext": base64.b64encode(os.urandom(110)).decode(),
        },
    }


def _with_services(url: str, data_dir: Path, work: Callable[[Services], int]) -> int:
    from services.bootstrap import bootstrap
    from services.settings import Settings

    services = bootstrap(Settings(database_url=url, data_dir=data_dir, log_format="json"))
    try:
        return work(services)
    finally:
        services.close()


def phase_idle(url: str, data_dir: Path, out: Path) -> int:
    """Bootstrap only: the RSS floor of every phase."""
    return _with_services(url, data_dir, lambda s: s.log.tree_size())


def phase_catch_up(url: str, data_dir: Path, out: Path) -> int:
    """Log the whole ledger (records, leaf hashes, nodes, checkpoints)."""
    return _with_services(url, data_dir, lambda s: s.log.catch_up())


def phase_export(url: str, data_dir: Path, out: Path) -> int:
    """Write the complete export."""
    from projections.export import export_ledger

    return _with_services(url, data_dir, lambda s: export_ledger(s.log, out).records)


def phase_verify(url: str, data_dir: Path, out: Path) -> int:
    """Verify the export offline (no database)."""
    from ledger.verify import verify_export

    return verify_export(out).records


def phase_verify_per_proof(url: str, data_dir: Path, out: Path) -> int:
    """Check every record and fold every inclusion proof up to the root (issue 5's verify)."""
    import orjson

    from ledger.checkpoint import verify_signed_checkpoint
    from ledger.export_format import ExportFilter
    from ledger.verify import _verify_records_by_proof

    checkpoint = verify_signed_checkpoint(
        orjson.loads((out / "checkpoint.json").read_bytes()), None
    )
    return _verify_records_by_proof(out, checkpoint, ExportFilter(None, None, None), None)


def phase_sha256_lines(url: str, data_dir: Path, out: Path) -> int:
    """Hash every line of events.jsonl as a leaf: SHA-256(0x00 || line)."""
    count = 0
    with (out / "events.jsonl").open("rb") as handle:
        for line in handle:
            hashlib.sha256(b"\x00" + line[:-1]).digest()
            count += 1
    return count


def phase_sha256_file(url: str, data_dir: Path, out: Path) -> int:
    """Hash events.jsonl in one stream (1 MiB reads)."""
    digest, count = hashlib.sha256(), 0
    with (out / "events.jsonl").open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            count += chunk.count(b"\n")
    return count


PHASES: dict[str, Callable[[str, Path, Path], int]] = {
    "idle (bootstrap only)": phase_idle,
    "log catch-up": phase_catch_up,
    "export": phase_export,
    "verify": phase_verify,
    "verify, per proof": phase_verify_per_proof,
    "sha256 per line": phase_sha256_lines,
    "sha256 whole file": phase_sha256_file,
}


# Modules a phase imports, loaded before its clock starts (the verifier is offline code an
# auditor runs once: its import is not part of the records/s it sustains).
PRELOAD: dict[str, tuple[str, ...]] = {
    "verify": ("ledger.verify",),
    "verify, per proof": ("ledger.verify", "ledger.checkpoint", "ledger.export_format"),
}


def _child(name: str, url: str, data_dir: Path, out: Path, results: Any) -> None:
    for module in PRELOAD.get(name, ()):
        importlib.import_module(module)
    start, cpu_start = time.perf_counter(), time.process_time()
    count = PHASES[name](url, data_dir, out)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((count, seconds, cpu, rss_kib))


def measure(name: str, url: str, data_dir: Path, out: Path) -> tuple[int, float, float, int]:
    """Run one phase in a fresh child process; return (items, seconds, CPU s, peak RSS KiB)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(name, url, data_dir, out, results))
    child.start()
    outcome: tuple[int, float, float, int] = results.get()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"phase {name!r} failed with exit code {child.exitcode}")
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    url = args.database_url or f"sqlite:///{work / 'ledger.db'}"
    data_dir, out = work / "data", work / "out"
    try:
        print(f"generating {args.events} events ({url.split('?')[0]}) …", file=sys.stderr)
        gen_seconds = generate(url, data_dir, args.events)
        rows = []
        for name in PHASES:
            print(f"{name} …", file=sys.stderr)
            rows.append((name, *measure(name, url, data_dir, out)))
        size_mib = (out / "events.jsonl").stat().st_size / 2**20
        proofs_mib = (out / "proofs.jsonl").stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nexport benchmark: {args.events} events, {url.split(':')[0]}; bulk generation "
        f"{gen_seconds:.1f} s ({args.events / gen_seconds:,.0f} events/s); events.jsonl "
        f"{size_mib:.0f} MiB, proofs.jsonl {proofs_mib:.0f} MiB\n"
    )
    verify_rate = next(r[1] / r[2] for r in rows if r[0] == "verify")
    header = (
        f"| {'phase':<22} | {'items':>9} | {'seconds':>8} | {'CPU s':>7} | {'items/s':>10} "
        f"| {'peak RSS MiB':>12} | {'vs verify':>9} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, count, seconds, cpu, rss in rows:
        rate = count / seconds if seconds else float("inf")
        ratio = f"{rate / verify_rate:.1f}x" if name != "idle (bootstrap only)" else "-"
        print(
            f"| {name:<22} | {count:>9} | {seconds:>8.2f} | {cpu:>7.2f} | {rate:>10,.0f} | "
            f"{rss / 1024:>12.0f} | {ratio:>9} |"
        )
    # Issue 14's ratio, by wall time and by CPU time (the latter is steadier on a busy box).
    wall = {name: seconds for name, _, seconds, _, _ in rows}
    cpu_s = {name: cpu for name, _, _, cpu, _ in rows}
    for what, times in (("wall", wall), ("CPU", cpu_s)):
        print(
            f"verify / sha256 per line ({what}): "
            f"{times['sha256 per line'] / times['verify']:.3f} "
            f"(1/{times['verify'] / times['sha256 per line']:.1f}); "
            f"verify per proof / verify: {times['verify, per proof'] / times['verify']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
