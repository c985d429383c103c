"""What the command line prints: JSON lines, write receipts, and the one error line."""

from __future__ import annotations

import argparse
import sys
from typing import Final

import orjson

from ledger.application import Receipt

_LINE_BREAKS: Final = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on


def emit_json(value: object) -> None:
    """Print `value` as one line of JSON."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_receipt(args: argparse.Namespace, receipt: Receipt) -> int:
    """Print a write's event id (or the whole receipt with --json)."""
    if args.json:
        emit_json(receipt.to_json())
    else:
        print(receipt.event_id)
    return 0


def report_error(message: str) -> None:
    """Print `message` as the one error line on stderr.

    Anything that would break it into lines (a newline, or a separator such as U+001E that
    `str.splitlines` honours, arriving in an argument) is shown escaped.
    """
    text = "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in message)
    print(f"consent-ledger: error: {text}", file=sys.stderr)
