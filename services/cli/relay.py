"""Command-line verbs of this area, registered on the main parser by `services.cli.main`.

`consent-ledger relay` publishes the ledger to Kafka until SIGTERM or SIGINT, which stop
it after the batch in hand (its position is stored only for acknowledged batches, so
even SIGKILL loses nothing). `--once` publishes what the ledger holds now and exits,
for cron jobs and tests.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from services.cli.args import VerbAdder
from services.cli.output import emit_json
from services.entrypoints import DEFAULT_BATCH_SIZE, DEFAULT_POLL_INTERVAL_S, run_relay

if TYPE_CHECKING:
    from services.bootstrap import Services

DEFAULT_ONCE_GIVE_UP_S = 60.0


def register(verb: VerbAdder, common: object) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("relay", cmd_relay, "publish the ledger's events and permission changes to Kafka")
    p.add_argument(
        "--once", action="store_true", help="publish what the ledger holds now, then exit"
    )
    p.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="ledger events per batch"
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_S,
        help="seconds between looks at the ledger when caught up",
    )
    p.add_argument(
        "--give-up-after",
        type=float,
        default=None,
        help="exit 5 once publishing has failed this many seconds "
        f"(default: never; with --once {DEFAULT_ONCE_GIVE_UP_S:g})",
    )


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an event that SIGTERM or SIGINT sets; restore the old handlers afterwards."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_relay(args: argparse.Namespace, services: Services) -> int:
    """Run the relay until a signal (or, with --once, until caught up); print its counts."""
    give_up = args.give_up_after
    if give_up is None and args.once:
        give_up = DEFAULT_ONCE_GIVE_UP_S
    with stop_on_signals() as stop:
        stats = run_relay(
            services,
            stop,
            batch_size=args.batch_size,
            poll_interval_s=args.poll_interval,
            until_caught_up=args.once,
            give_up_after_s=give_up,
        )
    if args.json:
        emit_json(stats.to_json())
    else:
        print(
            f"published {stats.events} events ({stats.records} records); position {stats.position}"
        )
    return 0
