"""Hold, store and check Ed25519 keys: the log's signing key and its one signature check.

The signing key lives in a file of the data directory (PKCS#8 PEM or the bare 32-byte
seed, mode 0600, never overwritten); `ed25519_verifies` is the one Ed25519 check of the
code base (checkpoints, signed notes, export manifests).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.checkpoint.errors import CheckpointFormatError
from ledger.encoding import b64encode
from ledger.key_files import require_private

__all__ = [
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "KeyFormat",
    "SigningKey",
    "ed25519_verifies",
    "load_signing_key_or_create",
]

ED25519_PUBLIC_KEY_SIZE: Final = 32  # RFC 8032 §5.1.5
ED25519_SEED_SIZE: Final = 32  # RFC 8032 §5.1.5: the private key is a 32-byte seed
ED25519_SIGNATURE_SIZE: Final = 64  # RFC 8032 §5.1.6
_PEM_HEADER: Final = b"-----BEGIN"

KeyFormat = Literal["pem", "raw"]
"""How a SigningKey is written to a file: PKCS#8 PEM, or the bare 32-byte seed."""


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
        return b64encode(self.public_key_raw())

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


def ed25519_verifies(public_key_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Return whether signature is a valid Ed25519 signature of message under the key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


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
