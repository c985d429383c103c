"""Per-subject encryption of personal data in evidence (crypto-shredding).

Each subject has its own 256-bit data key. Personal fields of evidence are sealed with
AES-GCM under that key, bound to the subject and event id as associated data. Erasing a
subject destroys its key: the ciphertext stays in the ledger (so every hash and proof
still verifies) but can never be read again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Protocol
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.encoding import Base64Error, b64decode, b64encode
from ledger.errors import InvalidInputError

PUBLIC_EVIDENCE_FIELDS: Final = frozenset({"channel", "method", "notice_id"})
"""Evidence fields stored in the clear; every other field is treated as personal data."""

SEALED: Final = "sealed"
SEAL_ALGORITHM: Final = "AES-256-GCM"
NONCE_BYTES: Final = 12
MAX_EVIDENCE_BYTES: Final = 16 * 1024


class SubjectKeyStore(Protocol):
    """Hold one data key per subject; forget it for good on erasure."""

    def key_for(self, subject: str, *, create: bool) -> bytes | None:
        """Return the subject's 32-byte key, creating it if `create`; None if there is none."""
        ...

    def destroy(self, subject: str) -> None:
        """Destroy the subject's key, so nothing sealed under it can be read again."""
        ...


def _aad(subject: str, event_id: UUID) -> bytes:
    return f"consent-ledger/evidence/v1|{subject}|{event_id}".encode()


def seal_evidence(
    evidence: Mapping[str, Any] | None,
    *,
    subject: str,
    event_id: UUID,
    keys: SubjectKeyStore,
) -> dict[str, Any] | None:
    """Return evidence with its personal fields replaced by one AES-GCM ciphertext.

    Requires JSON-serialisable values. Fields in PUBLIC_EVIDENCE_FIELDS stay in the clear.
    """
    if not evidence:
        return None
    if not isinstance(evidence, Mapping):
        raise InvalidInputError("evidence must be a JSON object")
    try:
        encoded = orjson.dumps(dict(evidence))
    except TypeError as error:
        raise InvalidInputError(f"evidence is not JSON-serialisable: {error}") from None
    if len(encoded) > MAX_EVIDENCE_BYTES:
        raise InvalidInputError(
            f"evidence is {len(encoded)} bytes; at most {MAX_EVIDENCE_BYTES} are accepted"
        )
    if SEALED in evidence:
        raise InvalidInputError(f"evidence may not carry a field named {SEALED!r}")
    public = {k: v for k, v in evidence.items() if k in PUBLIC_EVIDENCE_FIELDS}
    personal = {k: v for k, v in evidence.items() if k not in PUBLIC_EVIDENCE_FIELDS}
    if personal:
        key = keys.key_for(subject, create=True)
        assert key is not None
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(personal), _aad(subject, event_id))
        public[SEALED] = {
            "alg": SEAL_ALGORITHM,
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(ciphertext),
        }
    return public


def open_evidence(
    evidence: Mapping[str, Any] | None,
    *,
    subject: str,
    event_id: UUID,
    keys: SubjectKeyStore,
) -> dict[str, Any] | None:
    """Return evidence with its personal fields decrypted, or marked erased.

    Where the subject's key is gone, the personal fields read as `{"erased": true}`.
    """
    if not evidence:
        return None
    public = {k: v for k, v in evidence.items() if k != SEALED}
    sealed = evidence.get(SEALED)
    if sealed is None:
        return public
    key = keys.key_for(subject, create=False)
    if key is None:
        public["personal_data"] = {"erased": True}
        return public
    try:
        plaintext = AESGCM(key).decrypt(
            b64decode(sealed["nonce"]),
            b64decode(sealed["ciphertext"]),
            _aad(subject, event_id),
        )
    except (InvalidTag, Base64Error):
        public["personal_data"] = {"unreadable": True}
        return public
    public.update(orjson.loads(plaintext))
    return public
