"""Key files on disk must be private: readable and writable by their owner alone."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Final

from ledger.errors import InvalidInputError

PRIVATE_MODE: Final = 0o600  # what key files are created with
_EXPOSING_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


class KeyFileExposedError(InvalidInputError):
    """Refuse to use a key file that others than its owner may read or write."""

    title = "Key file exposed"

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(
            f"key file {path} has mode {mode:04o}: others may read it; "
            f"run `chmod 600 {path}` (a key that others could read must also be rotated)"
        )
        self.path = path
        self.mode = mode


def require_private(path: Path) -> None:
    """Raise KeyFileExposedError unless `path` grants nothing to group or others.

    Requires `path` to exist.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _EXPOSING_BITS:
        raise KeyFileExposedError(path, mode)
