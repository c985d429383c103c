"""`consent-ledger demo`: load the SoundCloud 2024-2025 scenario and walk through it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ledger.errors import ConflictError
from services.cli.args import VerbAdder

if TYPE_CHECKING:
    from services.bootstrap import Services


def register(verb: VerbAdder, common: object) -> None:
    """Add the `demo` verb."""
    verb("demo", cmd_demo, "load the SoundCloud 2024-2025 scenario and walk through it")


def cmd_demo(args: argparse.Namespace, services: Services) -> int:
    """Load the demo scenario into an empty ledger (once) and print the walkthrough."""
    from services.demo import find_scenario, load_demo, walkthrough

    scenario = find_scenario(services.ledger)
    if scenario is None:
        held = services.ledger.ledger_position()
        if held:
            raise ConflictError(
                f"the ledger already holds events (position {held}) but not the demo; "
                "the demo loads only into an empty ledger (pass --database-url for a new one)"
            )
        scenario = load_demo(services.ledger)
    walkthrough(services.ledger, scenario, print)
    return 0
