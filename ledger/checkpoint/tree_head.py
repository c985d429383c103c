"""Sign and verify checkpoint.json, the JSON tree head of BRIEF §5.

The signature is Ed25519 over ``JCS({log_id, tree_size, root_hash, timestamp})``
(RFC 8785); the root hash is lowercase hex, the key and signature standard base64.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ledger.checkpoint.errors import (
    CheckpointFormatError,
    CheckpointSignatureError,
    UntrustedKeyError,
    decode_b64,
)
from ledger.checkpoint.keys import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    SigningKey,
    ed25519_verifies,
)
from ledger.encoding import RecordError, b64encode, canonical_json
from ledger.errors import InvalidInstantError
from ledger.instants import format_instant
from ledger.merkle.hashing import HASH_SIZE

__all__ = [
    "CHECKPOINT_FIELDS",
    "MAX_TREE_SIZE",
    "SIGNED_FIELDS",
    "Checkpoint",
    "SignedCheckpoint",
    "format_timestamp",
    "parse_timestamp",
    "sign_checkpoint",
    "signed_body",
    "verify_signed_checkpoint",
]

MAX_TREE_SIZE: Final = 2**53 - 1  # the largest integer I-JSON (RFC 7493), hence JCS, carries
SIGNED_FIELDS: Final = ("log_id", "tree_size", "root_hash", "timestamp")
CHECKPOINT_FIELDS: Final = (*SIGNED_FIELDS, "public_key", "signature")

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_LOWER_HEX_HASH = re.compile(rf"[0-9a-f]{{{2 * HASH_SIZE}}}")


def format_timestamp(moment: datetime) -> str:
    """Return moment as ISO 8601 UTC with microseconds and Z: 2026-11-26T17:00:00.123456Z.

    Requires an aware datetime; it is converted to UTC first (ledger.instants formats).
    """
    try:
        return format_instant(moment)
    except InvalidInstantError:
        raise CheckpointFormatError(
            f"timestamp {moment.isoformat()}: got no zone, want UTC"
        ) from None


def parse_timestamp(text: str) -> datetime:
    """Return the UTC datetime of an ISO 8601 timestamp ending in Z (1-6 fraction digits)."""
    if not _TIMESTAMP.fullmatch(text):
        raise CheckpointFormatError(
            f"timestamp: got {text!r}, want ISO 8601 UTC like '2026-11-26T17:00:00.123456Z'"
        )
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as error:
        raise CheckpointFormatError(f"timestamp: got {text!r}, {error}") from None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Hold a tree head: the log, its size, its RFC 9162 root hash and when it was taken.

    Requires a non-empty log_id, 0 <= tree_size <= 2**53 - 1, a HASH_SIZE-byte
    root_hash and an aware timestamp (normalised to UTC on construction).
    """

    log_id: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime

    def __post_init__(self) -> None:
        """Check the field preconditions and normalise the timestamp to UTC."""
        if not self.log_id:
            raise CheckpointFormatError("log_id: got '', want a non-empty string")
        if isinstance(self.tree_size, bool) or not 0 <= self.tree_size <= MAX_TREE_SIZE:
            raise CheckpointFormatError(
                f"tree_size: got {self.tree_size!r}, want an integer in [0, {MAX_TREE_SIZE}]"
            )
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(
                f"root_hash: got {len(self.root_hash)} bytes, want {HASH_SIZE}"
            )
        if self.timestamp.utcoffset() is None:
            raise CheckpointFormatError(
                f"timestamp {self.timestamp.isoformat()}: got no zone, want an aware datetime"
            )
        # Frozen dataclass, hence object.__setattr__; the instant is unchanged.
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))


def signed_body(checkpoint: Checkpoint) -> bytes:
    """Return the bytes a checkpoint signature covers: JCS (RFC 8785) of its four fields.

    The fields are log_id, tree_size, root_hash as lowercase hex and timestamp as
    format_timestamp renders it.
    """
    return _jcs(
        {
            "log_id": checkpoint.log_id,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash.hex(),
            "timestamp": format_timestamp(checkpoint.timestamp),
        }
    )


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """Hold a checkpoint with the raw Ed25519 public key and signature over signed_body."""

    checkpoint: Checkpoint
    public_key: bytes
    signature: bytes

    def to_json(self) -> dict[str, str | int]:
        """Return the checkpoint.json object of BRIEF §5 (hashes hex, key and signature base64)."""
        cp = self.checkpoint
        return {
            "log_id": cp.log_id,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "timestamp": format_timestamp(cp.timestamp),
            "public_key": b64encode(self.public_key),
            "signature": b64encode(self.signature),
        }


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey) -> SignedCheckpoint:
    """Return the checkpoint signed by key over signed_body(checkpoint)."""
    return SignedCheckpoint(checkpoint, key.public_key_raw(), key.sign(signed_body(checkpoint)))


def verify_signed_checkpoint(obj: Mapping[str, object], public_key_b64: str | None) -> Checkpoint:
    """Check a checkpoint.json object and return the checkpoint it vouches for.

    Requires the six fields of BRIEF §5 with their types and encodings (other fields
    are unsigned and ignored). The signature is checked over JCS of the four signed
    fields exactly as they appear in obj. With `public_key_b64` (the trusted key,
    obtained out of band) the embedded key must equal it; with None the embedded key
    is used, which proves integrity but not origin. Raises CheckpointFormatError,
    UntrustedKeyError or CheckpointSignatureError.
    """
    missing = [name for name in CHECKPOINT_FIELDS if name not in obj]
    if missing:
        raise CheckpointFormatError(
            f"checkpoint fields: missing {', '.join(missing)}; want {', '.join(CHECKPOINT_FIELDS)}"
        )
    log_id = _field_str(obj, "log_id")
    tree_size = obj["tree_size"]
    if not isinstance(tree_size, int) or isinstance(tree_size, bool):
        raise CheckpointFormatError(
            f"tree_size: got {type(tree_size).__name__} {tree_size!r}, want an integer"
        )
    root_hex = _field_str(obj, "root_hash")
    if not _LOWER_HEX_HASH.fullmatch(root_hex):
        raise CheckpointFormatError(
            f"root_hash: got {root_hex!r}, want {2 * HASH_SIZE} lowercase hex digits"
        )
    timestamp = _field_str(obj, "timestamp")
    checkpoint = Checkpoint(log_id, tree_size, bytes.fromhex(root_hex), parse_timestamp(timestamp))
    embedded = decode_b64(_field_str(obj, "public_key"), "public_key", ED25519_PUBLIC_KEY_SIZE)
    signature = decode_b64(_field_str(obj, "signature"), "signature", ED25519_SIGNATURE_SIZE)
    if public_key_b64 is not None:
        trusted = decode_b64(public_key_b64, "trusted public key", ED25519_PUBLIC_KEY_SIZE)
        if embedded != trusted:
            raise UntrustedKeyError(
                f"checkpoint public_key: got {b64encode(embedded)}, "
                f"want {b64encode(trusted)} (trusted)"
            )
    signed: dict[str, str | int] = {
        "log_id": log_id,
        "tree_size": tree_size,
        "root_hash": root_hex,
        "timestamp": timestamp,
    }
    body = _jcs(signed)
    if not ed25519_verifies(embedded, signature, body):
        raise CheckpointSignatureError(
            f"checkpoint signature of log {log_id!r} at tree_size {tree_size}: "
            f"got a signature that does not verify under public key {b64encode(embedded)}"
        )
    return checkpoint


def _field_str(obj: Mapping[str, object], name: str) -> str:
    """Return obj[name] if it is a string; raise CheckpointFormatError otherwise."""
    value = obj[name]
    if not isinstance(value, str):
        raise CheckpointFormatError(f"{name}: got {type(value).__name__}, want a string")
    return value


def _jcs(value: Mapping[str, str | int]) -> bytes:
    """Return the RFC 8785 canonical JSON of a flat object of strings and integers."""
    try:
        return canonical_json(dict(value))
    except RecordError as error:
        raise CheckpointFormatError(
            f"checkpoint body is not canonicalizable: {error.detail}"
        ) from None
