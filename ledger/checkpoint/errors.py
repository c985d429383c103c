"""Errors of checkpoints, signed notes and signing keys, and the checked decoders raising them.

Every message says got/want.
"""

from __future__ import annotations

from ledger.encoding import Base64Error, b64decode

__all__ = [
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointSignatureError",
    "UntrustedKeyError",
    "decode_b64",
    "require_size",
]


class CheckpointError(ValueError):
    """Signal that a checkpoint cannot be built, parsed or trusted."""


class CheckpointFormatError(CheckpointError):
    """Signal a malformed checkpoint, note or key: a field missing, mistyped or misencoded."""


class CheckpointSignatureError(CheckpointError):
    """Signal a signature that does not verify under the key it claims."""


class UntrustedKeyError(CheckpointError):
    """Signal a checkpoint signed by some key other than the trusted one."""


def decode_b64(text: str, what: str, size: int | None = None) -> bytes:
    """Return the bytes of canonical base64 `text` (of exactly `size` bytes if given).

    Raises CheckpointFormatError naming `what` otherwise.
    """
    try:
        data = b64decode(text)
    except Base64Error as error:
        raise CheckpointFormatError(f"{what}: {error}") from None
    if size is not None:
        require_size(data, what, size)
    return data


def require_size(data: bytes, what: str, size: int) -> None:
    """Raise CheckpointFormatError unless data is `size` bytes long."""
    if len(data) != size:
        raise CheckpointFormatError(f"{what}: got {len(data)} bytes, want {size}")
