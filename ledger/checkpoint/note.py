"""Sign and verify C2SP signed notes and the tlog-checkpoint note of the log.

https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint: the form Go tooling
and witnesses understand. The note carries the origin, the tree size and the root hash;
the log_id and timestamp stay in checkpoint.json.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from ledger.checkpoint.errors import (
    CheckpointFormatError,
    CheckpointSignatureError,
    UntrustedKeyError,
    decode_b64,
    require_size,
)
from ledger.checkpoint.keys import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    SigningKey,
    ed25519_verifies,
)
from ledger.checkpoint.tree_head import Checkpoint
from ledger.encoding import b64encode
from ledger.merkle.hashing import HASH_SIZE

__all__ = [
    "NOTE_ED25519_TYPE",
    "NOTE_KEY_ID_SIZE",
    "note_key_id",
    "note_verifier_key",
    "sign_note",
    "to_signed_note",
    "verify_note",
    "verify_signed_note",
]

NOTE_ED25519_TYPE: Final = b"\x01"  # c2sp.org/signed-note: signature type of Ed25519
NOTE_KEY_ID_SIZE: Final = 4  # c2sp.org/signed-note: key ID is a big-endian uint32
NOTE_SIGNATURE_PREFIX: Final = "\N{EM DASH} "  # c2sp.org/signed-note: "— " opens a line
NOTE_MAX_SIGNATURES: Final = 100  # signed-note: verifiers SHOULD cap it and MUST accept 16

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def note_key_id(name: str, public_key_raw: bytes) -> bytes:
    """Return the 4-byte signed-note key ID: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    material = name.encode("utf-8") + b"\n" + NOTE_ED25519_TYPE + public_key_raw
    return hashlib.sha256(material).digest()[:NOTE_KEY_ID_SIZE]


def note_verifier_key(name: str, public_key_raw: bytes) -> str:
    """Return the verifier key text of Go's note package: name+hex(key ID)+base64(0x01||key)."""
    _require_note_key_name(name)
    require_size(public_key_raw, "Ed25519 public key", ED25519_PUBLIC_KEY_SIZE)
    key_id = note_key_id(name, public_key_raw).hex()
    return f"{name}+{key_id}+{b64encode(NOTE_ED25519_TYPE + public_key_raw)}"


def sign_note(text: str, key: SigningKey, name: str) -> str:
    """Return text as a C2SP signed note with one Ed25519 signature line by key `name`.

    Requires text to be non-empty, to end in a newline and to hold no control
    characters but newlines; requires a key name that is non-empty and free of
    Unicode spaces and '+'.
    """
    _require_note_text(text)
    _require_note_key_name(name)
    signature = key.sign(text.encode("utf-8"))
    blob = b64encode(note_key_id(name, key.public_key_raw()) + signature)
    return f"{text}\n{NOTE_SIGNATURE_PREFIX}{name} {blob}\n"


def verify_note(note: str, name: str, public_key_raw: bytes) -> str:
    """Check a C2SP signed note against one trusted Ed25519 key and return its text.

    Signature lines of other keys (another name or key ID) are ignored, as the spec
    requires; a line of the trusted key that fails to verify rejects the note, and so
    does a note without a verifying line of that key. Raises CheckpointFormatError,
    UntrustedKeyError or CheckpointSignatureError.
    """
    require_size(public_key_raw, "trusted Ed25519 public key", ED25519_PUBLIC_KEY_SIZE)
    text, lines = _split_note(note)
    key_id = note_key_id(name, public_key_raw)
    verified = False
    for line_name, blob in lines:
        if line_name != name or blob[:NOTE_KEY_ID_SIZE] != key_id:
            continue
        signature = blob[NOTE_KEY_ID_SIZE:]
        if len(signature) != ED25519_SIGNATURE_SIZE or not ed25519_verifies(
            public_key_raw, signature, text.encode("utf-8")
        ):
            raise CheckpointSignatureError(
                f"note signature by {name} (key ID {key_id.hex()}): got a signature that "
                "does not verify over the note text"
            )
        verified = True
    if not verified:
        seen = ", ".join(f"{n} ({b[:NOTE_KEY_ID_SIZE].hex()})" for n, b in lines)
        raise UntrustedKeyError(
            f"note signatures: got {seen}, want one by {name} (key ID {key_id.hex()})"
        )
    return text


def to_signed_note(checkpoint: Checkpoint, key: SigningKey, origin: str) -> str:
    """Return the checkpoint as a C2SP tlog-checkpoint signed note, signed by key as `origin`.

    The note text is the origin line, the tree size in decimal and the base64 root
    hash; the log_id and timestamp stay in checkpoint.json (extension lines are NOT
    RECOMMENDED by the spec). The key name is the origin, as the spec advises, so the
    origin must also be a valid key name: non-empty, without spaces or '+'.
    """
    text = f"{origin}\n{checkpoint.tree_size}\n{b64encode(checkpoint.root_hash)}\n"
    return sign_note(text, key, origin)


def verify_signed_note(note: str, name: str, public_key_raw: bytes) -> tuple[str, int, bytes]:
    """Check a C2SP checkpoint note signed by (name, key) and return (origin, size, root).

    Verifies the signature as verify_note does, then requires a tlog-checkpoint text:
    a non-empty origin, a decimal tree size without leading zeros, a base64 root of
    HASH_SIZE bytes, then only non-empty (ignored) extension lines.
    """
    text = verify_note(note, name, public_key_raw)
    lines = text.split("\n")[:-1]  # the text ends in "\n"
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointFormatError(
            f"checkpoint note text: got {len(lines)} lines, want at least 3 non-empty lines "
            "(origin, tree size, root hash)"
        )
    origin, size_line, root_line = lines[:3]
    if not _DECIMAL.fullmatch(size_line):
        raise CheckpointFormatError(
            f"checkpoint note tree size: got {size_line!r}, want decimal without leading zeros"
        )
    root = decode_b64(root_line, "checkpoint note root hash", HASH_SIZE)
    return origin, int(size_line), root


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Return the text and the (key name, key ID || signature) of each signature line."""
    if any(ord(char) < 0x20 and char != "\n" for char in note):
        raise CheckpointFormatError("signed note: got a control character, want none but '\\n'")
    if not note.endswith("\n"):
        raise CheckpointFormatError("signed note: got no final newline, want one")
    # The text is separated from the signatures by the last blank line.
    cut = note.rfind("\n\n", 0, len(note) - 1)
    if cut < 0:
        raise CheckpointFormatError("signed note: got no blank line, want one before signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    raw_lines = block.split("\n")[:-1]
    if not raw_lines:
        raise CheckpointFormatError("signed note: got no signature lines, want at least one")
    if len(raw_lines) > NOTE_MAX_SIGNATURES:
        raise CheckpointFormatError(
            f"signed note: got {len(raw_lines)} signatures, want at most {NOTE_MAX_SIGNATURES}"
        )
    lines: list[tuple[str, bytes]] = []
    for raw in raw_lines:
        parts = raw.removeprefix(NOTE_SIGNATURE_PREFIX).split(" ")
        if not raw.startswith(NOTE_SIGNATURE_PREFIX) or len(parts) != 2 or not parts[0]:
            raise CheckpointFormatError(
                f"signed note signature line: got {raw!r}, want '— <key name> <base64>'"
            )
        blob = decode_b64(parts[1], "signed note signature")
        if len(blob) < NOTE_KEY_ID_SIZE:
            raise CheckpointFormatError(
                f"signed note signature: got {len(blob)} bytes, want a 4-byte key ID and more"
            )
        lines.append((parts[0], blob))
    return text, lines


def _require_note_text(text: str) -> None:
    """Raise CheckpointFormatError unless text can be the text of a signed note."""
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointFormatError(
            "note text: got a text without final newline or with control characters, "
            "want newline-terminated text without control characters"
        )


def _require_note_key_name(name: str) -> None:
    """Raise CheckpointFormatError unless name is a valid signed-note key name."""
    if not name or any(char.isspace() or char == "+" for char in name):
        raise CheckpointFormatError(
            f"note key name: got {name!r}, want non-empty without spaces or '+'"
        )
