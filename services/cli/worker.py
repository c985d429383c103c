"""Command-line verb `consent-ledger worker`: every background duty, each leader-elected.

`consent-ledger worker [--duties projector,log,expiry,relay]` runs the chosen duties
(all by default; `relay` only when Kafka is configured) until SIGTERM or SIGINT, which
stop each after its batch in hand and hand the leases to the stand-bys. Run two or more
per ledger: one leads each duty, the others take over within seconds if it dies.
`--status` prints who leads each duty (as the leaders recorded it) and exits.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import orjson

from services.cli.relay import stop_on_signals
from services.worker import DUTIES, Worker, parse_duties

if TYPE_CHECKING:
    from services.bootstrap import Services


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("worker", cmd_worker, "run every background duty (leader-elected per duty)")
    p.add_argument(
        "--duties",
        metavar="A,B",
        help=f"comma-separated duties (default all: {','.join(DUTIES)})",
    )
    p.add_argument("--status", action="store_true", help="print who leads each duty, then exit")


def cmd_worker(args: argparse.Namespace, services: Services) -> int:
    """Run the worker until a signal; or print the duties' leaders."""
    if args.status:
        leaders = services.leases.leaders()
        if args.json:
            sys.stdout.write(orjson.dumps(leaders).decode() + "\n")
        else:
            for duty, row in leaders.items():
                print(f"{duty}\t{row['holder']}\tsince {row['since']}")
        return 0
    worker = Worker(services, parse_duties(args.duties))
    with stop_on_signals() as stop:
        started = worker.start()
        print(f"worker running duties: {', '.join(started)}", flush=True)
        stop.wait()
    worker.stop()
    return 0
