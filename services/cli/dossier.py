"""Command-line verbs of the dispute dossier: write one (JSON or court-ready PDF), verify one.

    consent-ledger dossier SUBJECT [--purpose P ...] [--at T] [--known-at K] --out FILE[.pdf|.json]
    consent-ledger dossier verify FILE --public-key KEY

`dossier verify` runs offline (no ledger): it reads the JSON dossier, or the one attached
to a PDF, and checks every inclusion proof and the checkpoint's signature. Exit codes
beyond those of `services.cli.main`: 1 when the dossier does not verify.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from ledger.errors import InvalidInputError
from ledger.verify import VerificationError
from projections.dossier import DossierRequest, build_dossier, verify_dossier
from services.bootstrap import Services
from services.cli.args import VerbAdder, scope_flags, time_flag
from services.cli.audit import read_public_key
from services.cli.output import emit_json, report_error
from services.dossier_pdf import NotADossierFileError, read_dossier, render_dossier_pdf

EXIT_FAILED: Final = 1  # the dossier does not verify
VERIFY_WORD: Final = "verify"
FORMATS: Final = (".pdf", ".json")


class _DossierWords(argparse.Action):
    """Take `SUBJECT` or `verify FILE`; `verify FILE` needs no ledger (runs offline)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        words = list(values or [])
        if words[:1] == [VERIFY_WORD] and len(words) == 2:
            namespace.offline_handler = cmd_dossier_verify
            namespace.file = Path(words[1])
            namespace.subject = None
        elif len(words) == 1:
            namespace.subject = words[0]
        else:
            parser.error("want SUBJECT, or `verify FILE`")


def register(verb: VerbAdder, common: object) -> None:
    """Add the `dossier` verb: `verb(name, handler, help) -> parser`."""
    p = verb(
        "dossier",
        cmd_dossier,
        "write a dispute dossier (JSON or court-ready PDF), or verify one: dossier verify FILE",
    )
    p.add_argument(
        "words",
        nargs="+",
        action=_DossierWords,
        metavar="SUBJECT | verify FILE",
        help="the subject to write a dossier about, or `verify` and a dossier file",
    )
    p.add_argument(
        "--purpose",
        nargs="+",
        action="extend",
        metavar="P",
        help="purposes to decide (repeatable; default every purpose)",
    )
    scope_flags(p, many_contents=False)
    time_flag(p, "--at", "the date D asked about (default now)")
    time_flag(p, "--known-at", "as the ledger knew it at K (default now)")
    p.add_argument("--out", type=Path, metavar="FILE", help="FILE.pdf (court-ready) or FILE.json")
    p.add_argument(
        "--public-key",
        type=Path,
        metavar="KEY",
        help="verify: the ledger's published key file (base64, PEM or signed-note form)",
    )


def cmd_dossier(args: argparse.Namespace, services: Services) -> int:
    """Write a dossier to --out: a PDF with the JSON attached, or the JSON itself."""
    out: Path | None = args.out
    if out is None:
        raise InvalidInputError("dossier: --out FILE.pdf or FILE.json is required")
    if out.suffix.lower() not in FORMATS:
        raise InvalidInputError(f"--out {out}: want a file name ending in .pdf or .json")
    if not out.parent.is_dir():
        raise InvalidInputError(f"--out {out}: the directory {out.parent} does not exist")
    request = DossierRequest(
        subject=args.subject,
        at=args.at,
        known_at=args.known_at,
        purposes=tuple(args.purpose or ()),
        party=args.party,
        content=_one_content(args.content),
        aspect=args.aspect,
    )
    dossier = build_dossier(services.ledger, services.log, request)
    if out.suffix.lower() == ".pdf":
        data = render_dossier_pdf(dossier)
    else:
        data = orjson.dumps(dossier, option=orjson.OPT_INDENT_2) + b"\n"
    _write_atomically(out, data)
    summary = {
        "out": str(out),
        "subject": dossier["subject"],
        "events": len(dossier["events"]),
        "proofs": dossier["proofs"],
        "decisions": [
            {"purpose": d["purpose"], "allowed": d["allowed"], "basis": d["basis"]}
            for d in dossier["decisions"]
        ],
    }
    if args.json:
        emit_json(summary)
    else:
        verdicts = ", ".join(
            f"{d['purpose']} {'allowed' if d['allowed'] else 'denied'} ({d['basis']})"
            for d in summary["decisions"]
        )
        print(f"wrote {out}: {summary['events']} events, proofs {summary['proofs']}; {verdicts}")
    return 0


def _one_content(contents: list[str] | None) -> str | None:
    """Return the one content id asked about, or None for the catalogue."""
    if not contents:
        return None
    if len(contents) > 1:
        raise InvalidInputError(f"dossier: --content takes one id, got {len(contents)}")
    return contents[0]


def cmd_dossier_verify(args: argparse.Namespace) -> int:
    """Verify a dossier file offline; print the verdict; exit 1 naming the first failure."""
    key = None
    if args.public_key is not None:
        key = base64.b64encode(read_public_key(args.public_key)).decode("ascii")
    try:
        data = args.file.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"dossier {args.file}: {error.strerror}") from None
    try:
        dossier = read_dossier(data, name=str(args.file))
        proven = verify_dossier(dossier, key)
    except (VerificationError, NotADossierFileError) as error:
        if args.json:
            emit_json({"verified": False, "error": error.detail})
        report_error(f"dossier verify FAILED: {error.detail}")
        return EXIT_FAILED
    checkpoint = dossier.get("checkpoint") or {}
    origin = "the given public key" if key else "the embedded key only (origin NOT checked)"
    if args.json:
        body = {
            "verified": True,
            "subject": dossier.get("subject"),
            "events_proven": proven,
            "tree_size": checkpoint.get("tree_size"),
            "root_hash": checkpoint.get("root_hash"),
            "public_key_checked": key is not None,
        }
        emit_json(body)
    else:
        print(
            f"dossier verified: {proven} events of subject {dossier.get('subject')!r} proven "
            f"against the checkpoint of tree size {checkpoint.get('tree_size')} "
            f"(root {checkpoint.get('root_hash')}), signed as checked with {origin}"
        )
    return 0


def _write_atomically(out: Path, data: bytes) -> None:
    """Write `data` to `out` through a temporary file beside it: all or nothing."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(name, out)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
