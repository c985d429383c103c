"""Command-line verbs of signed consent receipts.

    consent-ledger receipt EVENT_ID [--format dpv|kantara] [--out FILE]
    consent-ledger receipt verify FILE --public-key KEY

`receipt` prints (or writes to FILE) the signed receipt of one consent event; `receipt
verify` checks one offline (the file and the trusted key only): exit 0 when it verifies,
1 naming each check that fails on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from ledger.errors import InvalidInputError
from ledger.verify import VerificationError, parse_public_key
from projections.receipts import FORMATS, build_receipt, verify_receipt


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("receipt", _never, "print a consent event's signed receipt, or verify one")
    p.add_argument(
        "words", nargs="+", metavar="EVENT_ID | verify FILE", help="an event id, or: verify FILE"
    )
    p.add_argument("--format", choices=FORMATS, default="dpv", help="dpv (default) or kantara")
    p.add_argument("--out", type=Path, help="write the receipt to this file")
    p.add_argument("--public-key", help="verify: the log's public key, or a file holding it")
    p.set_defaults(offline_handler=cmd_receipt)


def _never(args: argparse.Namespace, services: Any) -> int:
    raise AssertionError("receipt runs as an offline handler")


def cmd_receipt(args: argparse.Namespace) -> int:
    """Dispatch: verify a receipt offline, or issue one (opening the ledger)."""
    if args.words[0] == "verify":
        return _verify(args)
    if len(args.words) != 1:
        raise InvalidInputError("receipt takes one EVENT_ID (or: receipt verify FILE)")
    try:
        event_id = UUID(args.words[0])
    except ValueError:
        raise InvalidInputError(f"event id {args.words[0]!r} is not a UUID") from None
    from services.bootstrap import bootstrap
    from services.cli.main import settings_from

    services = bootstrap(settings_from(args))
    try:
        receipt = build_receipt(services.ledger, services.log, event_id, fmt=args.format)
    finally:
        services.close()
    data = orjson.dumps(receipt, option=orjson.OPT_INDENT_2) + b"\n"
    if args.out is not None:
        try:
            args.out.write_bytes(data)
        except OSError as error:
            raise InvalidInputError(f"--out {args.out}: {error.strerror}") from None
        print(args.out)
    else:
        sys.stdout.write(data.decode())
    return 0


def _verify(args: argparse.Namespace) -> int:
    if len(args.words) != 2:
        raise InvalidInputError("receipt verify takes one FILE")
    if args.public_key is None:
        raise InvalidInputError("receipt verify needs --public-key KEY")
    text = args.public_key
    if Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    try:
        key = parse_public_key(text)
    except VerificationError as error:
        raise InvalidInputError(f"--public-key: {error}") from None
    path = Path(args.words[1])
    try:
        receipt = orjson.loads(path.read_bytes())
    except OSError as error:
        raise InvalidInputError(f"{path}: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        print(f"consent-ledger: receipt {path}: not JSON: {error}", file=sys.stderr)
        return 1
    if not isinstance(receipt, dict):
        print(f"consent-ledger: receipt {path}: not a JSON object", file=sys.stderr)
        return 1
    failures = verify_receipt(receipt, key)
    for failure in failures:
        print(f"consent-ledger: receipt {path}: {failure}", file=sys.stderr)
    if failures:
        return 1
    event_id = receipt.get("record_id") or receipt.get("consentReceiptID")
    print(f"receipt {path}: verified (event {event_id})")
    return 0
