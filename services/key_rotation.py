"""Rotate the data dir's two keys: the master key and the checkpoint signing key.

Both run with every ledger process stopped (they read the keys once, at start).

`rotate_master_key` re-wraps every subject key under a fresh master key in ONE
transaction, then swaps the key files: the new key is written to `master.key.next`
first, and the old one is kept as `master.key.retired-<UTC time>` (backups taken before
the rotation need it). Interrupted, it can simply be run again: rows already wrapped
under the new key are recognised and left alone. Erased subjects have no key row, so
they stay erased.

`rotate_checkpoint_key` appends the current public key to `checkpoint-keys.retired`
(one base64 raw Ed25519 key per line; `services.bootstrap` trusts their checkpoints)
and replaces `checkpoint-signing.key` by a new key. The old private key is destroyed:
old checkpoints verify with their own public key, and their notes name the old key ID.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.checkpoint import SigningKey, note_key_id
from ledger.errors import InvalidInputError
from projections.database import Database
from services.keystore import (
    CHECKPOINT_KEY_FILE,
    MASTER_KEY_FILE,
    RETIRED_CHECKPOINT_KEYS_FILE,
    SUBJECT_KEY_AAD,
    load_or_create_secret,
)

NEXT_SUFFIX: Final = ".next"


@dataclass(frozen=True)
class MasterKeyRotation:
    """What a master-key rotation did."""

    rewrapped: int  # subject keys now wrapped under the new master key
    retired_file: Path  # where the old master key was kept


@dataclass(frozen=True)
class CheckpointKeyRotation:
    """What a checkpoint-key rotation did: the old and new key IDs of the signed notes."""

    old_public_key: str
    new_public_key: str
    old_key_id: str
    new_key_id: str


def rotate_master_key(data_dir: Path, database: Database) -> MasterKeyRotation:
    """Re-wrap every subject key under a new master key, then install it (see module doc)."""
    current_path = data_dir / MASTER_KEY_FILE
    if not current_path.exists():
        raise InvalidInputError(f"no master key at {current_path}: nothing to rotate")
    old = AESGCM(current_path.read_bytes())
    new_key = load_or_create_secret(data_dir / (MASTER_KEY_FILE + NEXT_SUFFIX))
    new = AESGCM(new_key)
    rewrapped = 0
    with database.transaction() as cursor:
        cursor.execute("SELECT subject, nonce, wrapped FROM subject_keys")
        rows = cursor.fetchall()
        updates = []
        for subject, nonce, wrapped in rows:
            aad = SUBJECT_KEY_AAD + str(subject).encode()
            try:
                key = old.decrypt(bytes(nonce), bytes(wrapped), aad)
            except InvalidTag:
                new.decrypt(bytes(nonce), bytes(wrapped), aad)  # done by an interrupted run
                continue
            fresh = os.urandom(12)
            updates.append((fresh, new.encrypt(fresh, key, aad), str(subject)))
        cursor.executemany(
            database.sql("UPDATE subject_keys SET nonce = ?, wrapped = ? WHERE subject = ?"),
            updates,
        )
        rewrapped = len(updates)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    retired = data_dir / f"{MASTER_KEY_FILE}.retired-{stamp}"
    os.replace(current_path, retired)
    os.replace(data_dir / (MASTER_KEY_FILE + NEXT_SUFFIX), current_path)
    return MasterKeyRotation(rewrapped, retired)


def rotate_checkpoint_key(data_dir: Path, log_id: str) -> CheckpointKeyRotation:
    """Retire the checkpoint signing key (its public key stays trusted) and make a new one."""
    path = data_dir / CHECKPOINT_KEY_FILE
    if not path.exists():
        raise InvalidInputError(f"no checkpoint signing key at {path}: nothing to rotate")
    old = SigningKey.load(path)
    with (data_dir / RETIRED_CHECKPOINT_KEYS_FILE).open("a", encoding="ascii") as retired:
        retired.write(old.public_key_b64() + "\n")
        retired.flush()
        os.fsync(retired.fileno())
    new = SigningKey.generate()
    draft = path.with_name(path.name + NEXT_SUFFIX)
    draft.unlink(missing_ok=True)
    new.save(draft)
    os.replace(draft, path)
    return CheckpointKeyRotation(
        old.public_key_b64(),
        new.public_key_b64(),
        note_key_id(log_id, old.public_key_raw()).hex(),
        note_key_id(log_id, new.public_key_raw()).hex(),
    )
