# long module: the log's five verb groups share their output helpers; one file keeps them together
"""Command-line verbs of the verifiable log: export, verify, audit, checkpoint, proof.

`export`, `checkpoint` and `proof` catch the log up to the ledger's head first (a
one-shot command has no background worker), in batches. `verify` needs no ledger at
all: it runs offline on an export directory. `audit` deliberately does not catch up:
it checks the stored ledger against what was signed before.

Exit codes beyond those of `services.cli.main`: 1 when `verify` or `audit` finds a problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from ledger.checkpoint import note_verifier_key
from ledger.errors import InvalidInputError
from ledger.instants import format_instant
from ledger.verify import (
    MANIFEST_FILE,
    ExportFilter,
    VerificationError,
    parse_public_key,
    verify_export,
)
from projections.audit import AuditReport, audit_ledger
from projections.export import export_ledger, require_empty_directory
from services.bootstrap import Services
from services.cli.args import VerbAdder, instant
from services.cli.output import emit_json

EXIT_FAILED: Final = 1  # verify or audit found a problem


def register(verb: VerbAdder, common: object) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("export", cmd_export, "write a signed, Merkle-proven audit export")
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="an empty or new folder")
    p.add_argument(
        "--subject", nargs="+", action="extend", metavar="S", help="only these subjects' events"
    )
    p.add_argument(
        "--from",
        dest="recorded_from",
        type=instant("--from"),
        metavar="T",
        help="only events recorded at or after T",
    )
    p.add_argument(
        "--to",
        dest="recorded_to",
        type=instant("--to"),
        metavar="T",
        help="only events recorded before T",
    )
    p.add_argument(
        "--evidence",
        action="store_true",
        help="add evidence.jsonl: decrypted evidence (personal data) of the records",
    )
    p.add_argument(
        "--since-checkpoint",
        type=Path,
        metavar="FILE",
        help="add consistency.json: proof that this tree extends FILE's",
    )
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help=argparse.SUPPRESS)

    p = verb("verify", _never, "verify an audit export offline (files and public key only)")
    p.set_defaults(offline_handler=cmd_verify)
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="the export folder to check")
    p.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="the log's trusted public key (base64, PEM or note verifier key)",
    )
    p.add_argument(
        "--since-checkpoint",
        type=Path,
        metavar="FILE",
        help="an earlier checkpoint.json the export must be consistent with",
    )
    p.add_argument(
        "--since-public-key",
        type=Path,
        metavar="FILE",
        help="the key that signed --since-checkpoint, if the log's key was rotated since",
    )

    verb("audit", cmd_audit, "re-hash the stored ledger against its latest signed checkpoint")

    p = verb("checkpoint", cmd_checkpoint, "log the ledger's head and print its signed checkpoint")
    p.add_argument(
        "--public-key",
        action="store_true",
        help="print the log's public key instead (to hand to auditors)",
    )

    p = verb("proof", _never, "print an RFC 9162 inclusion or consistency proof")
    kinds = p.add_subparsers(dest="proof_kind", metavar="KIND", parser_class=type(p))
    kinds.required = True
    q = verb("inclusion", cmd_proof_inclusion, "prove the event at a ledger position", kinds)
    q.add_argument(
        "--position", type=int, required=True, metavar="N", help="the event's ledger position"
    )
    q.add_argument(
        "--tree-size", type=int, metavar="M", help="default: the latest signed checkpoint's"
    )
    q = verb("consistency", cmd_proof_consistency, "prove a tree size extends another", kinds)
    q.add_argument("--first", type=int, required=True, metavar="A", help="the smaller tree size")
    q.add_argument("--second", type=int, metavar="B", help="default: the latest checkpoint's")


# ------------------------------------------------------------------ handlers


def cmd_export(args: argparse.Namespace, services: Services) -> int:
    """Catch the log up, then write the export."""
    export_filter = ExportFilter(args.subject, args.recorded_from, args.recorded_to)
    since = (
        _read_json(args.since_checkpoint, "--since-checkpoint") if args.since_checkpoint else None
    )
    require_empty_directory(args.out_dir)  # refuse before logging anything
    _catch_up(services)
    with _progress("exporting") as progress:
        summary = export_ledger(
            services.log,
            args.out_dir,
            export_filter,
            evidence=args.evidence,
            since_checkpoint=since,
            batch_size=args.batch_size,
            progress=progress,
        )
    if args.json:
        emit_json(summary.to_json())
        return 0
    cp = summary.checkpoint.checkpoint
    scope = (
        f"complete: leaves 0 … {cp.tree_size - 1}"
        if export_filter.complete
        else f"filtered: {orjson.dumps(export_filter.to_json()).decode()}"
    )
    print(
        f"exported {summary.records} records ({scope}) to {summary.directory}\n"
        f"checkpoint: log {cp.log_id}, tree size {cp.tree_size}, root {cp.root_hash.hex()}\n"
        f"public key: {services.log.key.public_key_b64()}"
    )
    return 0


def read_public_key(path: Path) -> bytes:
    """Return the raw Ed25519 key in a `--public-key` file (base64, PEM or signed-note form);
    raise InvalidInputError naming the file when it cannot be read or parsed."""
    try:
        return parse_public_key(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError(f"--public-key {path}: {error.strerror}") from None
    except VerificationError as error:
        raise InvalidInputError(f"--public-key {path}: {error.detail}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify an export directory; print the verdict; exit 1 naming the first failure."""
    key = read_public_key(args.public_key) if args.public_key is not None else None
    since_key = (
        read_public_key(args.since_public_key) if args.since_public_key is not None else None
    )
    since = (
        _read_json(args.since_checkpoint, "--since-checkpoint") if args.since_checkpoint else None
    )
    if not args.out_dir.is_dir():
        raise InvalidInputError(f"export directory {args.out_dir} does not exist")
    total = _claimed_records(args.out_dir)
    try:
        with _progress("verifying") as progress:
            report = verify_export(
                args.out_dir,
                public_key=key,
                since_checkpoint=since,
                since_public_key=since_key,
                progress=(lambda done: progress(done, total)) if progress else None,
            )
    except VerificationError as error:
        if args.json:
            emit_json({"verified": False, "error": error.detail})
        print(f"consent-ledger: verify FAILED: {error.detail}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        emit_json(report.to_json())
    else:
        cp = report.checkpoint
        scope = (
            f"complete export: leaves 0 … {cp.tree_size - 1}"
            if report.filter.complete
            else f"filtered export {orjson.dumps(report.filter.to_json()).decode()}"
        )
        since_text = (
            f"; consistent with the earlier checkpoint of tree size {report.consistent_from}"
            if report.consistent_from is not None
            else ""
        )
        print(
            f"verified {report.records} records ({scope}) of log {cp.log_id} at tree size "
            f"{cp.tree_size}, root {cp.root_hash.hex()}, signed {format_instant(cp.timestamp)}"
            f"{since_text}"
        )
    if not report.key_trusted:
        print(
            "consent-ledger: warning: no --public-key given; signatures were checked against "
            "the key the export carries (proves integrity, not origin)",
            file=sys.stderr,
        )
    return 0


def cmd_audit(args: argparse.Namespace, services: Services) -> int:
    """Audit the stored ledger against the latest signed checkpoint."""
    with _progress("auditing") as progress:
        report = audit_ledger(services.log, progress=progress)
    if args.json:
        emit_json(report.to_json())
    else:
        print(_audit_text(report))
    return 0 if report.ok else EXIT_FAILED


def _audit_text(report: AuditReport) -> str:
    """Return the one-paragraph verdict of an audit."""
    cp = report.checkpoint.checkpoint
    against = f"checkpoint of tree size {cp.tree_size} (root {cp.root_hash.hex()})"
    if report.ok:
        text = f"audit ok: the ledger's first {report.checked} events match the {against}"
        if not report.tables_match:
            text += "; the log's own tables do not: rebuild them"
        return text
    lines = []
    if report.finding is not None:
        f = report.finding
        lines.append(
            f"audit FAILED: position {f.position} {f.kind} (leaf {f.leaf_index}): {f.detail}"
        )
    if report.suspect_leaves is not None:
        first, last = report.suspect_leaves
        where = ""
        if report.suspect_positions is not None:
            where = f", positions {report.suspect_positions[0]} … {report.suspect_positions[1]}"
        lines.append(
            f"audit FAILED: the ledger does not match the {against}; the log's tables are "
            f"damaged too, so the first alteration is only bounded: leaves {first} … {last}{where}"
        )
    return "\n".join(lines)


def cmd_checkpoint(args: argparse.Namespace, services: Services) -> int:
    """Log the ledger's head, sign a checkpoint of it if needed, and print it."""
    log = services.log
    if args.public_key:
        raw = log.key.public_key_raw()
        if args.json:
            emit_json(
                {
                    "public_key": log.key.public_key_b64(),
                    "note_verifier_key": note_verifier_key(log.log_id, raw),
                }
            )
        else:
            print(log.key.public_key_b64())
        return 0
    _catch_up(services)
    checkpoint = log.head_checkpoint()
    if args.json:
        emit_json(checkpoint.to_published_json())
    else:
        cp = checkpoint.checkpoint
        print(
            f"log {cp.log_id}: tree size {cp.tree_size}, root {cp.root_hash.hex()}, "
            f"signed {format_instant(cp.timestamp)}\n\n{checkpoint.note}",
            end="",
        )
    return 0


def cmd_proof_inclusion(args: argparse.Namespace, services: Services) -> int:
    """Print the inclusion proof of the event at a ledger position."""
    _catch_up(services)
    if args.tree_size is None:
        services.log.head_checkpoint()
    proof = services.log.inclusion(args.position, args.tree_size)
    if args.json:
        emit_json(proof.to_json())
    else:
        body = proof.to_json()
        print(
            f"position {proof.position} is leaf {proof.leaf_index} of the tree of "
            f"{proof.tree_size} leaves, root {body['root_hash']}\n"
            f"leaf_hash {body['leaf_hash']}\n"
            + "".join(f"audit_path[{i}] {h}\n" for i, h in enumerate(body["audit_path"])),
            end="",
        )
    return 0


def cmd_proof_consistency(args: argparse.Namespace, services: Services) -> int:
    """Print the consistency proof between two tree sizes."""
    _catch_up(services)
    second = args.second
    if second is None:
        second = services.log.head_checkpoint().tree_size
    proof = services.log.consistency(args.first, second)
    if args.json:
        emit_json(proof.to_json())
    else:
        body = proof.to_json()
        print(
            f"tree size {proof.first} (root {body['first_root']}) is a prefix of tree size "
            f"{proof.second} (root {body['second_root']})\n"
            + "".join(f"proof[{i}] {h}\n" for i, h in enumerate(body["proof"])),
            end="",
        )
    return 0


# ------------------------------------------------------------------- helpers


def _never(args: argparse.Namespace, services: Services) -> int:
    """Stand in for verbs whose real handler is set elsewhere (sub-verbs, offline)."""
    raise InvalidInputError(f"{args.verb}: nothing to do")


def _catch_up(services: Services) -> None:
    """Log every ledger event not logged yet, with a progress bar on a terminal."""
    logged, _ = services.log.tracking()
    behind = max(services.ledger.ledger_position() - logged, 0)
    with _progress("logging the ledger") as progress:
        services.log.catch_up(
            progress=(lambda done: progress(done, behind)) if progress and behind else None
        )


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """Yield a progress callback (done, total; total 0 if unknown) drawing a rich bar on a
    terminal (stderr), or None elsewhere so that pipes and logs stay clean."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _claimed_records(directory: Path) -> int:
    """Return the record count manifest.json claims (0 if unreadable), for the progress bar
    only: verify_export checks the claim."""
    try:
        records = orjson.loads((directory / MANIFEST_FILE).read_bytes()).get("records")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return 0
    return records if isinstance(records, int) and records > 0 else 0


def _read_json(path: Path, flag: str) -> dict[str, Any]:
    """Return the JSON object in a file given on the command line."""
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as error:
        raise InvalidInputError(f"{flag} {path}: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"{flag} {path}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{flag} {path}: want a JSON object (a checkpoint.json)")
    return value
