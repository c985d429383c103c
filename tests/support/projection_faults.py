"""Crash or stall the projections worker at named points: a test-side wrapper, not a seam.

Production code has no fault parameter. `with_faults` returns a copy of a view that
calls a hook at three points of each batch it applies:

- ``mid-batch``: the first half of the batch's rows are written, the rest not yet;
- ``before-tracking``: every row is written, the tracking record not yet;
- ``after-commit``: the batch and its tracking record are committed.

`FaultyModel` hands such a view to a `Projector` in the test's process. For a real
worker process, run ``python -m tests.support.projection_faults POINT[:N] project ...``:
it installs a hook that dies (`os._exit`, no clean-up, like SIGKILL) the Nth time
POINT is reached, then runs the CLI as `consent-ledger` would.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ledger.events import Entry
from projections.permissions import TermsVersion
from projections.read_models import PermissionsView
from projections.read_models import model as read_model_module
from projections.runner import ViewSource

FAULT_EXIT_CODE = 99
"""Exit code of a worker killed by the fault hook."""

FAULT_POINTS = ("mid-batch", "before-tracking", "after-commit")

Hook = Callable[[str], object]


def with_faults(view: PermissionsView, hook: Hook) -> PermissionsView:
    """Return a copy of `view` (same datastore and tables) calling `hook` at each point."""
    faulty = copy.copy(view)
    cls = type(view)

    def write_entries(
        cursor: Any, entries: Sequence[Entry], terms: dict[str, TermsVersion]
    ) -> None:
        middle = len(entries) // 2
        if middle:
            cls._write_entries(faulty, cursor, entries[:middle], terms)
            hook("mid-batch")
            entries = entries[middle:]
        cls._write_entries(faulty, cursor, entries, terms)

    def track(cursor: Any, position: int) -> None:
        hook("before-tracking")
        cls._track(faulty, cursor, position)

    def apply(entries: Sequence[Entry], *, after: int) -> int:
        position = cls.apply(faulty, entries, after=after)
        if entries:
            hook("after-commit")
        return position

    faulty._write_entries = write_entries  # type: ignore[method-assign]
    faulty._track = track  # type: ignore[method-assign]
    faulty.apply = apply  # type: ignore[method-assign]
    return faulty


class FaultyModel:
    """Stand in for a ReadModel: the same tables, seen through a view that calls `hook`."""

    def __init__(self, model: ViewSource, hook: Hook) -> None:
        self._view = with_faults(model.view, hook)

    @property
    def view(self) -> PermissionsView:
        """Return the faulty view."""
        return self._view

    def close(self) -> None:
        """Leave the wrapped model's connections to their owner."""


def dying_hook(spec: str) -> Hook:
    """Return the hook POINT[:N] asks for: exit with FAULT_EXIT_CODE the Nth time at POINT."""
    point, _, nth = spec.partition(":")
    if point not in FAULT_POINTS:
        raise SystemExit(f"fault {spec!r}: want one of {', '.join(FAULT_POINTS)}, optionally :N")
    remaining = [int(nth) if nth else 1]

    def hook(reached: str) -> None:
        if reached != point:
            return
        remaining[0] -= 1
        if remaining[0] <= 0:
            sys.stdout.flush()
            os._exit(FAULT_EXIT_CODE)

    return hook


def main(argv: Sequence[str]) -> int:
    """Run the CLI with argv[1:] in a process whose read models die at the fault argv[0]."""
    hook = dying_hook(argv[0])
    construct = read_model_module.ReadModel._construct

    def faulty_construct(self: read_model_module.ReadModel) -> PermissionsView:
        return with_faults(construct(self), hook)

    read_model_module.ReadModel._construct = faulty_construct  # type: ignore[method-assign]
    from services.cli.main import main as cli_main

    return cli_main(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
