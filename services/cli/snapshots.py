"""Command-line verbs of training pipelines: consent snapshots, snapshot filtering, datasets.

    consent-ledger snapshot create OUT_DIR --purpose P [--party X] [--aspect A]
        [--at T] [--known-at K]
    consent-ledger snapshot verify DIR [--public-key FILE] [--export EXPORT_DIR]
    consent-ledger filter PURPOSE --snapshot DIR [--input X.parquet --output Y.parquet]
    consent-ledger datasets register NAME --snapshot DIR [--model M] [--model-version V]
        [--items FILE]
    consent-ledger datasets impacts NAME [--json]
    consent-ledger datasets report NAME [--format json|md]

`snapshot verify` and `filter --snapshot` need no ledger (they run on files alone).
`snapshot verify` exits 1 naming the first failure, like `verify`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ledger.errors import InvalidInputError
from ledger.instants import format_instant
from ledger.snapshot import SnapshotError, SnapshotQuestion
from ledger.verify import VerificationError, parse_public_key
from ledger.vocabulary import check_aspect, check_party
from projections.snapshots.filter import SnapshotFilter, filter_parquet
from projections.snapshots.verify import load_table, open_snapshot, verify_snapshot
from projections.snapshots.writer import create_snapshot
from services.bootstrap import Services, load_vocabulary
from services.cli.args import instant as _instant
from services.cli.projections import read_pairs, write_pairs
from services.settings import Settings

EXIT_FAILED: Final = 1


def register(verb: Any, common: Any) -> None:
    """Add the snapshot and datasets verbs: `verb(name, handler, help, sub) -> parser`."""
    group = verb("snapshot", _never, "signed consent snapshots for training pipelines")
    actions = group.add_subparsers(dest="snapshot_verb", metavar="ACTION", parser_class=type(group))
    actions.required = True
    p = verb("create", cmd_snapshot_create, "write a signed snapshot of one question", actions)
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="a new or empty folder")
    p.add_argument("--purpose", required=True, help="the purpose the snapshot answers")
    p.add_argument("--party", default="platform", help="platform, a third party or '*'")
    p.add_argument("--aspect", default="all", help="music, voice, likeness or all")
    p.add_argument("--at", type=_instant("--at"), help="effective instant (default now)")
    p.add_argument("--known-at", type=_instant("--known-at"), help="ledger instant (default now)")

    p = verb(
        "verify", _never, "verify a snapshot offline (and its rows against an export)", actions
    )
    p.set_defaults(offline_handler=cmd_snapshot_verify)
    p.add_argument("directory", metavar="DIR", type=Path, help="the snapshot folder")
    p.add_argument("--public-key", type=Path, metavar="FILE", help="the log's trusted public key")
    p.add_argument(
        "--export", type=Path, metavar="EXPORT_DIR", help="recompute every row from this export"
    )

    group = verb("datasets", _never, "register training datasets and follow their consent")
    actions = group.add_subparsers(dest="datasets_verb", metavar="ACTION", parser_class=type(group))
    actions.required = True
    p = verb("register", cmd_datasets_register, "record a dataset built from a snapshot", actions)
    p.add_argument("name", metavar="NAME", help="the dataset's name")
    p.add_argument(
        "--snapshot", required=True, type=Path, metavar="DIR", help="the snapshot it was cut from"
    )
    p.add_argument("--model", metavar="M", help="the model trained on it")
    p.add_argument("--model-version", metavar="V", help="that model's version")
    p.add_argument(
        "--items",
        type=Path,
        metavar="FILE",
        help="the pairs used: subject,content lines or Parquet",
    )
    p = verb(
        "impacts", cmd_datasets_impacts, "what the snapshot allowed that is denied now", actions
    )
    p.add_argument("name", metavar="NAME", help="a registered dataset")
    p = verb("report", cmd_datasets_report, "training-content summary of a dataset", actions)
    p.add_argument("name", metavar="NAME", help="a registered dataset")
    p.add_argument("--format", choices=("json", "md"), default="json", help="json (default) or md")


def add_filter_flags(p: Any) -> None:
    """Add `--snapshot`, `--input` and `--output` to the `filter` verb."""
    p.add_argument(
        "--snapshot",
        type=Path,
        metavar="DIR",
        action=_OfflineFlag,
        help="answer from this signed snapshot (vectorised; no ledger needed)",
    )
    p.add_argument("--input", type=Path, metavar="X.parquet", help="candidates (with --snapshot)")
    p.add_argument(
        "--output", type=Path, metavar="Y.parquet", help="allowed rows (with --snapshot)"
    )


class _OfflineFlag(argparse.Action):
    """Store the value and make the verb run without the ledger (`offline_handler`)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.offline_handler = cmd_filter_snapshot


def _never(args: argparse.Namespace, services: Services) -> int:
    raise InvalidInputError("name an action")


def _emit(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


# ------------------------------------------------------------------ snapshots


def cmd_snapshot_create(args: argparse.Namespace, services: Services) -> int:
    """Write a snapshot and print its id (or the manifest with --json)."""
    asked = services.ledger.question(
        "-", args.purpose, args.party, None, args.aspect, args.at, args.known_at
    )
    question = SnapshotQuestion(asked.purpose, asked.party, asked.aspect, asked.at, asked.known_at)
    manifest = create_snapshot(services.ledger, services.log, args.out_dir, question)
    if args.json:
        _emit(manifest)
    else:
        rows = manifest["rows"]
        print(
            f"snapshot {manifest['snapshot_id']}: {rows['total']} rows ({rows['catalogue']} "
            f"subjects, {rows['allowed']} allowed) at position {manifest['position']}, "
            f"tree size {manifest['tree_size']}, in {args.out_dir}"
        )
    return 0


def _public_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return parse_public_key(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError(f"--public-key {path}: {error.strerror}") from None
    except VerificationError as error:
        raise InvalidInputError(f"--public-key {path}: {error.detail}") from None


def cmd_snapshot_verify(args: argparse.Namespace) -> int:
    """Verify a snapshot; exit 1 naming the first failure."""
    key = _public_key(args.public_key)
    if not args.directory.is_dir():
        raise InvalidInputError(f"snapshot directory {args.directory} does not exist")
    try:
        report = verify_snapshot(args.directory, public_key=key, export=args.export)
    except (SnapshotError, VerificationError) as error:
        if args.json:
            _emit({"verified": False, "error": error.detail})
        print(f"consent-ledger: snapshot verify FAILED: {error.detail}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _emit(report.to_json())
    else:
        recomputed = (
            f"; all {report.rows_recomputed} rows recomputed from the export"
            if report.rows_recomputed is not None
            else ""
        )
        trust = "" if report.key_trusted else " (key taken from the snapshot: pass --public-key)"
        print(
            f"OK: snapshot {report.manifest['snapshot_id']} signed{trust}, files intact, "
            f"tree size {report.manifest['tree_size']}{recomputed}"
        )
    return 0


# --------------------------------------------------------------------- filter


def cmd_filter_snapshot(args: argparse.Namespace) -> int:
    """Filter candidates against a snapshot: stdin lines, or Parquet to Parquet."""
    settings = Settings.from_env()
    manifest, question = open_snapshot(
        args.snapshot, vocabulary=load_vocabulary(settings.purposes_file)
    )
    _require_same(args, manifest, question)
    snapshot = SnapshotFilter(load_table(args.snapshot))
    if (args.input is None) != (args.output is None):
        raise InvalidInputError("--input and --output go together")
    if args.input is not None:
        if not args.input.is_file():
            raise InvalidInputError(f"--input {args.input}: no such file")
        read, kept = filter_parquet(snapshot, args.input, args.output)
        if args.json:
            _emit({"read": read, "allowed": kept, "snapshot_id": manifest["snapshot_id"]})
        return 0
    return write_pairs(snapshot.filter_pairs(read_pairs(sys.stdin)), json=args.json)


def _require_same(
    args: argparse.Namespace, manifest: dict[str, Any], question: SnapshotQuestion
) -> None:
    if args.purpose != question.purpose.name:
        raise InvalidInputError(
            f"the snapshot answers purpose {question.purpose.name!r}, not {args.purpose!r}"
        )
    if args.party != "platform" and check_party(args.party) != question.party:
        raise InvalidInputError(
            f"the snapshot answers party {question.party!r}, not {args.party!r}"
        )
    for flag, given, held in (
        ("--at", args.at, question.at),
        ("--known-at", args.known_at, question.known_at),
    ):
        if given is not None and given != held:
            raise InvalidInputError(
                f"{flag} {format_instant(given)}: the snapshot answers {format_instant(held)}"
            )
    if args.min_position is not None and args.min_position > int(manifest["position"]):
        raise InvalidInputError(
            f"--min-position {args.min_position}: the snapshot reflects position "
            f"{manifest['position']}"
        )
    check_aspect(question.aspect)


# ------------------------------------------------------------------- datasets


def read_items(path: Path) -> list[tuple[str, str]]:
    """Return the pairs of an items file: Parquet (subject, content) or subject,content lines."""
    if not path.is_file():
        raise InvalidInputError(f"--items {path}: no such file")
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path, columns=["subject", "content"])
        except (OSError, pa.ArrowInvalid, KeyError) as error:
            raise InvalidInputError(
                f"--items {path}: want Parquet with subject, content: {error}"
            ) from None
        return list(zip(table["subject"].to_pylist(), table["content"].to_pylist(), strict=True))
    try:
        with path.open(encoding="utf-8") as handle:
            return list(read_pairs(handle))
    except UnicodeDecodeError:
        raise InvalidInputError(f"--items {path}: not UTF-8 text") from None


def cmd_datasets_register(args: argparse.Namespace, services: Services) -> int:
    """Register a dataset; print its event id (or the receipt and dataset with --json)."""
    items = read_items(args.items) if args.items is not None else None
    receipt, dataset = services.lineage.register(
        args.name,
        args.snapshot,
        model=args.model,
        model_version=args.model_version,
        items=items,
    )
    if args.json:
        _emit({**receipt.to_json(), "dataset": dataset.to_json()})
    else:
        print(receipt.event_id)
    return 0


def cmd_datasets_impacts(args: argparse.Namespace, services: Services) -> int:
    """Print what a dataset's snapshot allowed that is denied now."""
    answer = services.lineage.impacts(args.name)
    if args.json:
        _emit(answer)
        return 0
    if not answer["impacts"]:
        print(f"no impacts: everything dataset {args.name!r} used is still allowed")
    for impact in answer["impacts"]:
        print(
            f"{impact['subject']},{impact['content'] or '(catalogue)'}  {impact['basis']}  "
            f"{impact['event_id'] or '-'}"
        )
    return 0


def cmd_datasets_report(args: argparse.Namespace, services: Services) -> int:
    """Print a dataset's training-content summary, JSON or Markdown."""
    report = services.lineage.report(args.name)
    if args.format == "json":
        _emit(report)
    else:
        sys.stdout.write("".join(_markdown(report)))
    return 0


def _markdown(report: dict[str, Any]) -> Iterator[str]:
    q = report["question"]
    yield f"# Training-content summary: {report['dataset']}\n\n"
    yield f"- Model: {report['model'] or '-'} {report['model_version'] or ''}\n"
    yield (
        f"- Consent question: purpose `{q['purpose']}`, party `{q['party']}`, aspect "
        f"`{q['aspect']}`, at {q['at']}, as known at {q['known_at']}\n"
    )
    yield (
        f"- Snapshot: `{report['snapshot_id']}` (manifest SHA-256 `{report['manifest_sha256']}`)\n"
    )
    yield (
        f"- Signed checkpoint: tree size {report['tree_size']}, root `{report['root_hash']}`; "
        f"snapshot position {report['snapshot_position']}\n"
    )
    yield (
        f"- Registered: event `{report['event_id']}` at position {report['position']}, "
        f"{report['recorded_at']}\n"
    )
    items = report["items_sha256"] or "all rows the snapshot allowed"
    yield f"- Items: {report['items']} (list SHA-256: {items})\n"
    yield (
        f"- Items denied now: {report['impacts_now']} "
        f"(as of position {report['as_of_position']})\n\n"
    )
    yield "| basis | terms version | items |\n| --- | --- | ---: |\n"
    for row in report["counts"]:
        yield f"| {row['basis']} | {row['terms_version'] or '-'} | {row['items']} |\n"
