"""Sign and verify checkpoints (tree heads) of the ledger's Merkle log with Ed25519.

Two encodings of the same tree head:
- the JSON ``checkpoint.json`` of BRIEF §5, signed over
  ``JCS({log_id, tree_size, root_hash, timestamp})`` (RFC 8785);
- the C2SP signed note (https://c2sp.org/tlog-checkpoint over
  https://c2sp.org/signed-note), which Go tooling and witnesses understand.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.key_files import require_private
from ledger.merkle.hashing import HASH_SIZE

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointSignatureError",
    "KeyFormat",
    "SignedCheckpoint",
    "SigningKey",
    "UntrustedKeyError",
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

ED25519_PUBLIC_KEY_SIZE: Final = 32  # RFC 8032 §5.1.5
ED25519_SEED_SIZE: Final = 32  # RFC 8032 §5.1.5: the private key is a 32-byte seed
ED25519_SIGNATURE_SIZE: Final = 64  # RFC 8032 §5.1.6
NOTE_ED25519_TYPE: Final = b"\x01"  # c2sp.org/signed-note: signature type of Ed25519
NOTE_KEY_ID_SIZE: Final = 4  # c2sp.org/signed-note: key ID is a big-endian uint32
NOTE_SIGNATURE_PREFIX: Final = "\N{EM DASH} "  # c2sp.org/signed-note: "— " opens a line
NOTE_MAX_SIGNATURES: Final = 100  # signed-note: verifiers SHOULD cap it and MUST accept 16
MAX_TREE_SIZE: Final = 2**53 - 1  # the largest integer I-JSON (RFC 7493), hence JCS, carries
SIGNED_FIELDS: Final = ("log_id", "tree_size", "root_hash", "timestamp")
CHECKPOINT_FIELDS: Final = (*SIGNED_FIELDS, "public_key", "signature")

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_LOWER_HEX_HASH = re.compile(rf"[0-9a-f]{{{2 * HASH_SIZE}}}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_PEM_HEADER: Final = b"-----BEGIN"

KeyFormat = Literal["pem", "raw"]
"""How a SigningKey is written to a file: PKCS#8 PEM, or the bare 32-byte seed."""


class CheckpointError(ValueError):
    """Signal that a checkpoint cannot be built, parsed or trusted."""


class CheckpointFormatError(CheckpointError):
    """Signal a malformed checkpoint, note or key: a field missing, mistyped or misencoded."""


class CheckpointSignatureError(CheckpointError):
    """Signal a signature that does not verify under the key it claims."""


class UntrustedKeyError(CheckpointError):
    """Signal a checkpoint signed by some key other than the trusted one."""


def format_timestamp(moment: datetime) -> str:
    """Return moment as ISO 8601 UTC with microseconds and Z: 2026-11-26T17:00:00.123456Z.

    Requires an aware datetime; it is converted to UTC first.
    """
    if moment.utcoffset() is None:
        raise CheckpointFormatError(f"timestamp {moment.isoformat()}: got no zone, want UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class SigningKey:
    """Hold an Ed25519 private key and sign with it; never print or pickle its secret."""

    __slots__ = ("_private",)

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """Wrap an existing Ed25519 private key."""
        self._private = private_key

    def __repr__(self) -> str:
        """Return a representation naming the public key only."""
        return f"SigningKey(public_key={self.public_key_b64()!r})"

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Return the key of a 32-byte RFC 8032 seed (the raw private key)."""
        if len(seed) != ED25519_SEED_SIZE:
            raise CheckpointFormatError(
                f"Ed25519 seed: got {len(seed)} bytes, want {ED25519_SEED_SIZE}"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Return the key of an unencrypted PKCS#8 PEM holding an Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise CheckpointFormatError(f"private key PEM: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointFormatError(
                f"private key PEM: got a {type(key).__name__}, want an Ed25519 private key"
            )
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a key file written by save: a PEM, or a bare 32-byte seed."""
        data = path.read_bytes()
        if data.lstrip().startswith(_PEM_HEADER):
            return cls.from_pem(data)
        if len(data) == ED25519_SEED_SIZE:
            return cls.from_seed(data)
        raise CheckpointFormatError(
            f"signing key file {path}: got {len(data)} bytes that are not a PEM, "
            f"want a PEM or a {ED25519_SEED_SIZE}-byte raw seed"
        )

    def save(self, path: Path, *, key_format: KeyFormat = "pem") -> None:
        """Write the key to a new file readable by its owner only (mode 0600).

        Requires that `path` does not exist yet: a signing key is never overwritten,
        since losing it would orphan every checkpoint it signed. The file appears
        atomically, complete or not at all. Raises FileExistsError otherwise.
        """
        if key_format == "pem":
            data = self._private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            data = self._private.private_bytes_raw()
        _write_new_private_file(path, data)

    def public_key_raw(self) -> bytes:
        """Return the 32-byte RFC 8032 encoding of the public key."""
        return self._private.public_key().public_bytes_raw()

    def public_key_b64(self) -> str:
        """Return the raw public key in standard base64 (RFC 4648 §4), as checkpoint.json has it."""
        return base64.b64encode(self.public_key_raw()).decode("ascii")

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature (RFC 8032) of message."""
        return self._private.sign(message)


def load_signing_key_or_create(path: Path) -> SigningKey:
    """Return the key stored at path, generating and saving one (PEM, 0600) on first use.

    The caller picks a path in the deployment's data directory (LEDGER_DATA_DIR), never
    in the source tree: keys are created at run time, not shipped. Missing parent
    directories are created with mode 0700. Safe against a concurrent first run: the
    loser of the race loads the winner's key.
    """
    if path.exists():
        require_private(path)
        return SigningKey.load(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SigningKey.generate()
    try:
        key.save(path)
    except FileExistsError:
        return SigningKey.load(path)
    return key


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
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
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
    embedded = _b64_field(_field_str(obj, "public_key"), "public_key", ED25519_PUBLIC_KEY_SIZE)
    signature = _b64_field(_field_str(obj, "signature"), "signature", ED25519_SIGNATURE_SIZE)
    if public_key_b64 is not None:
        trusted = _b64_field(public_key_b64, "trusted public key", ED25519_PUBLIC_KEY_SIZE)
        if embedded != trusted:
            raise UntrustedKeyError(
                f"checkpoint public_key: got {_b64(embedded)}, want {_b64(trusted)} (trusted)"
            )
    signed: dict[str, str | int] = {
        "log_id": log_id,
        "tree_size": tree_size,
        "root_hash": root_hex,
        "timestamp": timestamp,
    }
    body = _jcs(signed)
    if not _ed25519_verifies(embedded, signature, body):
        raise CheckpointSignatureError(
            f"checkpoint signature of log {log_id!r} at tree_size {tree_size}: "
            f"got a signature that does not verify under public key {_b64(embedded)}"
        )
    return checkpoint


def note_key_id(name: str, public_key_raw: bytes) -> bytes:
    """Return the 4-byte signed-note key ID: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    material = name.encode("utf-8") + b"\n" + NOTE_ED25519_TYPE + public_key_raw
    return hashlib.sha256(material).digest()[:NOTE_KEY_ID_SIZE]


def note_verifier_key(name: str, public_key_raw: bytes) -> str:
    """Return the verifier key text of Go's note package: name+hex(key ID)+base64(0x01||key)."""
    _require_note_key_name(name)
    _require_size(public_key_raw, "Ed25519 public key", ED25519_PUBLIC_KEY_SIZE)
    key_id = note_key_id(name, public_key_raw).hex()
    return f"{name}+{key_id}+{_b64(NOTE_ED25519_TYPE + public_key_raw)}"


def sign_note(text: str, key: SigningKey, name: str) -> str:
    """Return text as a C2SP signed note with one Ed25519 signature line by key `name`.

    Requires text to be non-empty, to end in a newline and to hold no control
    characters but newlines; requires a key name that is non-empty and free of
    Unicode spaces and '+'.
    """
    _require_note_text(text)
    _require_note_key_name(name)
    signature = key.sign(text.encode("utf-8"))
    blob = _b64(note_key_id(name, key.public_key_raw()) + signature)
    return f"{text}\n{NOTE_SIGNATURE_PREFIX}{name} {blob}\n"


def verify_note(note: str, name: str, public_key_raw: bytes) -> str:
    """Check a C2SP signed note against one trusted Ed25519 key and return its text.

    Signature lines of other keys (another name or key ID) are ignored, as the spec
    requires; a line of the trusted key that fails to verify rejects the note, and so
    does a note without a verifying line of that key. Raises CheckpointFormatError,
    UntrustedKeyError or CheckpointSignatureError.
    """
    _require_size(public_key_raw, "trusted Ed25519 public key", ED25519_PUBLIC_KEY_SIZE)
    text, lines = _split_note(note)
    key_id = note_key_id(name, public_key_raw)
    verified = False
    for line_name, blob in lines:
        if line_name != name or blob[:NOTE_KEY_ID_SIZE] != key_id:
            continue
        signature = blob[NOTE_KEY_ID_SIZE:]
        if len(signature) != ED25519_SIGNATURE_SIZE or not _ed25519_verifies(
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
    text = f"{origin}\n{checkpoint.tree_size}\n{_b64(checkpoint.root_hash)}\n"
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
    root = _b64_field(root_line, "checkpoint note root hash", HASH_SIZE)
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
        blob = _b64_decode(parts[1], "signed note signature")
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


def _jcs(value: Mapping[str, str | int]) -> bytes:
    """Return the RFC 8785 canonical JSON of a flat object of strings and integers."""
    try:
        body: bytes = rfc8785.dumps(dict(value))
    except rfc8785.CanonicalizationError as error:
        raise CheckpointFormatError(f"checkpoint body is not canonicalizable: {error}") from None
    return body


def _ed25519_verifies(public_key_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Return whether signature is a valid Ed25519 signature of message under the key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _field_str(obj: Mapping[str, object], name: str) -> str:
    """Return obj[name] if it is a string; raise CheckpointFormatError otherwise."""
    value = obj[name]
    if not isinstance(value, str):
        raise CheckpointFormatError(f"{name}: got {type(value).__name__}, want a string")
    return value


def _b64(data: bytes) -> str:
    """Return data in standard base64 with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def _b64_decode(text: str, what: str) -> bytes:
    """Return the bytes of canonical standard base64; raise CheckpointFormatError otherwise."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise CheckpointFormatError(f"{what}: got {text!r}, want base64 ({error})") from None
    if _b64(data) != text:  # reject non-canonical padding bits: one encoding per value
        raise CheckpointFormatError(f"{what}: got {text!r}, want canonical base64")
    return data


def _b64_field(text: str, what: str, size: int) -> bytes:
    """Return the bytes of a base64 field that must decode to exactly `size` bytes."""
    data = _b64_decode(text, what)
    _require_size(data, what, size)
    return data


def _require_size(data: bytes, what: str, size: int) -> None:
    """Raise CheckpointFormatError unless data is `size` bytes long."""
    if len(data) != size:
        raise CheckpointFormatError(f"{what}: got {len(data)} bytes, want {size}")


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Create path holding data, mode 0600, atomically; raise FileExistsError if it exists."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say it, whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link() refuses to replace an existing file, unlike rename().
        os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
