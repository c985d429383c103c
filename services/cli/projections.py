"""Command-line verbs of the read side, registered on the main parser by `services.cli.main`.

`consent-ledger project` runs the projections worker: it keeps the read models up to date
(LISTEN/NOTIFY on PostgreSQL, polling on SQLite) and records `ConsentExpired` as grants
expire, until SIGTERM or SIGINT, while it holds the `projector` lease of
`consent-ledger worker` (`services.leases`). `--once` catches up, records due expiries and exits;
`--rebuild` empties the read models first and rebuilds them from position 0.

`consent-ledger filter PURPOSE` reads `subject,content` lines on stdin and prints those
that may be used, streaming in chunks (memory stays constant for any input length).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import orjson

from ledger.errors import InvalidIdentifierError, InvalidInputError
from ledger.vocabulary import check_identifier
from projections.expiry import ExpiryScheduler
from projections.runner import DEFAULT_BATCH_SIZE, Projector
from services.cli.args import VerbAdder, time_flag
from services.cli.output import emit_json

if TYPE_CHECKING:
    from services.bootstrap import Services

_HEADER = "subject,content"


def register(verb: VerbAdder, common: object) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("project", cmd_project, "run the projections worker (read models and expiries)")
    p.add_argument(
        "--rebuild", action="store_true", help="empty the read models and rebuild from position 0"
    )
    p.add_argument("--once", action="store_true", help="catch up, record due expiries, then exit")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"ledger events per transaction (default {DEFAULT_BATCH_SIZE})",
    )

    p = verb("filter", cmd_filter, "print the subject,content lines of stdin that may be used")
    p.set_defaults(check_input=check_stdin)
    p.add_argument("purpose", help="a purpose of the vocabulary (see consent-ledger --help)")
    p.add_argument(
        "--party", default="platform", help="platform (the default), a third party or '*'"
    )
    p.add_argument("--model", help="ask about this model (BRIEF §2.1)")
    time_flag(p, "--at", "effective instant (default now)")
    time_flag(p, "--known-at", "ledger instant (default now)")
    p.add_argument(
        "--min-position", type=int, metavar="N", help="reflect at least the write at position N"
    )
    from services.cli.snapshots import add_filter_flags  # it imports this module's helpers

    add_filter_flags(p)


# ------------------------------------------------------------------ project


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_project(args: argparse.Namespace, services: Services) -> int:
    """Run the projections worker (or catch up once)."""
    if args.batch_size < 1:
        raise InvalidInputError(f"--batch-size must be at least 1, got {args.batch_size}")
    projector = Projector(
        services.ledger,
        services.projector.model,
        batch_size=args.batch_size,
    )
    scheduler = ExpiryScheduler(services.ledger, projector.model, services.ledger.clock)
    if args.rebuild:
        projector.rebuild()
    if args.once:
        projector.catch_up()
        if scheduler.run_due():
            projector.catch_up()
        status = projector.status()
        if args.json:
            emit_json(status.to_json())
        else:
            print(f"read models at position {status.position} (ledger head {status.head})")
        return 0
    # Under the worker's `projector` lease: beside a worker it stands by, not doubling work.
    lease = services.leases.lease("projector")
    try:
        with _stop_on_signals() as stop:
            projector.run(stop, due=scheduler, guard=lease.held)
    finally:
        lease.release()
    return 0


# ------------------------------------------------------------------- filter


def read_pairs(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield (subject, content) from `subject,content` lines; skip blanks and a header.

    The header is the first non-blank line when it reads `subject,content` (in any case,
    quoted or not, after a byte-order mark): a spreadsheet's export, not a subject.

    Raises InvalidInputError naming the line number of a malformed line.
    """
    first = True
    for number, line in enumerate(lines, 1):
        text = line.strip().lstrip("\ufeff")  # a spreadsheet's byte-order mark
        if not text:
            continue
        if first and _is_header(text):
            first = False
            continue
        first = False
        subject, sep, content = text.partition(",")
        if not sep:
            raise InvalidInputError(f"stdin line {number}: want subject,content, got {text!r}")
        try:
            yield (
                check_identifier(subject.strip(), field="subject"),
                check_identifier(content.strip(), field="content"),
            )
        except InvalidIdentifierError as error:
            raise InvalidInputError(f"stdin line {number}: {error.detail}") from None


def check_stdin(args: argparse.Namespace) -> None:
    """Read every stdin line and refuse a malformed one (for a ledger that is missing)."""
    for _ in read_pairs(sys.stdin):
        pass


def _is_header(text: str) -> bool:
    """Tell whether a line is the CSV header `subject,content` (any case, quotes, spaces)."""
    return text.replace(" ", "").replace('"', "").lower() == _HEADER


def cmd_filter(args: argparse.Namespace, services: Services) -> int:
    """Print the allowed `subject,content` lines of stdin, as they are decided."""
    if args.input is not None or args.output is not None:
        raise InvalidInputError("--input and --output filter against a --snapshot DIR")
    stdin: TextIO = sys.stdin
    allowed = services.reader.filter(
        args.purpose,
        read_pairs(stdin),
        party=args.party,
        at=args.at,
        known_at=args.known_at,
        min_position=args.min_position,
        model=args.model,
    )
    return write_pairs(allowed, json=args.json)


def write_pairs(allowed: Iterable[tuple[str, str]], *, json: bool) -> int:
    """Print allowed pairs as `subject,content` lines (JSON objects with `json`); return 0."""
    out = sys.stdout
    try:
        for count, (subject, content) in enumerate(allowed, 1):
            if json:
                out.write(orjson.dumps({"subject": subject, "content": content}).decode() + "\n")
            else:
                out.write(f"{subject},{content}\n")
            if count % 1000 == 0:
                out.flush()
        out.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix filters do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
    return 0
