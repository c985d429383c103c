"""Sign and verify checkpoints (tree heads) of the ledger's Merkle log with Ed25519.

Two encodings of the same tree head, one module each, and the key that signs both:
- `tree_head`: the JSON ``checkpoint.json`` of BRIEF §5, signed over
  ``JCS({log_id, tree_size, root_hash, timestamp})`` (RFC 8785);
- `note`: the C2SP signed note (https://c2sp.org/tlog-checkpoint over
  https://c2sp.org/signed-note), which Go tooling and witnesses understand;
- `keys`: the signing key, its file, and the one Ed25519 signature check;
- `errors`: the errors all three raise.

This package re-exports their public names, so callers import from `ledger.checkpoint`.
"""

from __future__ import annotations

from ledger.checkpoint.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointSignatureError,
    UntrustedKeyError,
)
from ledger.checkpoint.keys import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SEED_SIZE,
    ED25519_SIGNATURE_SIZE,
    KeyFormat,
    SigningKey,
    ed25519_verifies,
    load_signing_key_or_create,
)
from ledger.checkpoint.note import (
    NOTE_ED25519_TYPE,
    NOTE_KEY_ID_SIZE,
    note_key_id,
    note_verifier_key,
    sign_note,
    to_signed_note,
    verify_note,
    verify_signed_note,
)
from ledger.checkpoint.tree_head import (
    CHECKPOINT_FIELDS,
    MAX_TREE_SIZE,
    SIGNED_FIELDS,
    Checkpoint,
    SignedCheckpoint,
    format_timestamp,
    parse_timestamp,
    sign_checkpoint,
    signed_body,
    verify_signed_checkpoint,
)

__all__ = [
    "CHECKPOINT_FIELDS",
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "MAX_TREE_SIZE",
    "NOTE_ED25519_TYPE",
    "NOTE_KEY_ID_SIZE",
    "SIGNED_FIELDS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointSignatureError",
    "KeyFormat",
    "SignedCheckpoint",
    "SigningKey",
    "UntrustedKeyError",
    "ed25519_verifies",
    "format_timestamp",
    "load_signing_key_or_create",
    "note_key_id",
    "note_verifier_key",
    "parse_timestamp",
    "sign_checkpoint",
    "sign_note",
    "signed_body",
    "to_signed_note",
    "verify_note",
    "verify_signed_checkpoint",
    "verify_signed_note",
]
