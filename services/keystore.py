"""Key management: the master key on disk, and per-subject data keys in the database.

Each subject's data key is stored wrapped (AES-GCM under the master key) in the table
`subject_keys` of the ledger's database, so every server of a deployment shares it.
Erasure deletes the row: from then on the subject's sealed evidence cannot be read.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.encoding import Base64Error, b64decode
from ledger.errors import InvalidInputError
from ledger.key_files import require_private
from projections.database import Database

MASTER_KEY_FILE = "master.key"
CHECKPOINT_KEY_FILE = "checkpoint-signing.key"  # Ed25519 key signing the log's checkpoints
RETIRED_CHECKPOINT_KEYS_FILE = "checkpoint-keys.retired"  # public keys rotated out, base64
SUBJECT_KEY_AAD = b"consent-ledger/subject-key/v1|"


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """Return the secret in `path`, creating it (mode 0600) on first run.

    Safe against a concurrent first run: the loser of the race loads the winner's key.
    """
    if path.exists():
        require_private(path)
        secret = path.read_bytes()
        if len(secret) != size:
            raise RuntimeError(f"{path}: want a {size}-byte key, found {len(secret)} bytes")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = os.urandom(size)
    # Written aside, then linked into place: the key appears whole or not at all, and of
    # two processes starting at once on a new data dir, the second loads the first's.
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, path)
    except FileExistsError:
        return load_or_create_secret(path, size)
    finally:
        draft.unlink()
    return secret


def load_retired_keys(path: Path) -> list[bytes]:
    """Return the raw public keys listed in `path` (none if it does not exist)."""
    if not path.exists():
        return []
    return public_key_lines(path.read_text(encoding="ascii"))


def public_key_lines(text: str) -> list[bytes]:
    """Parse `checkpoint-keys.retired`: one base64 raw Ed25519 public key per non-empty line."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = b64decode(line.strip())
        except Base64Error:
            raw = b""
        if len(raw) != 32:
            raise InvalidInputError(f"{RETIRED_CHECKPOINT_KEYS_FILE} line {number}: not a key")
        keys.append(raw)
    return keys


class SqlSubjectKeyStore:
    """Keep per-subject data keys, wrapped by the master key, in the ledger's database."""

    def __init__(self, database: Database, master_key: bytes) -> None:
        self.database = database
        self._master = AESGCM(master_key)

    def create_table(self) -> None:
        """Create the key table if it does not exist."""
        blob = "BYTEA" if self.database.dialect == "postgres" else "BLOB"
        self.database.create_tables(
            "subject_keys",
            [
                "CREATE TABLE IF NOT EXISTS subject_keys ("
                f" subject TEXT PRIMARY KEY, nonce {blob} NOT NULL, wrapped {blob} NOT NULL)"
            ],
        )

    def key_for(self, subject: str, *, create: bool) -> bytes | None:
        """Return the subject's data key; create one first if `create` and none exists."""
        sql = self.database.sql
        with self.database.transaction() as cursor:
            cursor.execute(
                sql("SELECT nonce, wrapped FROM subject_keys WHERE subject = ?"), [subject]
            )
            row = cursor.fetchone()
            if row is not None:
                return self._master.decrypt(
                    bytes(row[0]), bytes(row[1]), SUBJECT_KEY_AAD + subject.encode()
                )
            if not create:
                return None
            key = AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(12)
            wrapped = self._master.encrypt(nonce, key, SUBJECT_KEY_AAD + subject.encode())
            cursor.execute(
                sql("INSERT INTO subject_keys (subject, nonce, wrapped) VALUES (?, ?, ?)"),
                [subject, nonce, wrapped],
            )
            return key

    def destroy(self, subject: str) -> None:
        """Delete the subject's key (idempotent)."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql("DELETE FROM subject_keys WHERE subject = ?"), [subject]
            )
