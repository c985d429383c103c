"""Command-line verbs of this area, registered on the main parser by `services.cli`."""

from __future__ import annotations

from typing import Any


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
