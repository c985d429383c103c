"""The audit export's format: its files, its filter and its signed manifest.

Defined in the core beside its verifier (`ledger.verify`), so that the writer in
`projections.export` and any independent verifier agree on one text
(docs/audit-export.md):

- ``events.jsonl``: one record per line, each line the RFC 8785 (JCS) form of the
  record, i.e. exactly the bytes the leaf hash covers;
- ``proofs.jsonl``: line for line, ``{"leaf_index", "tree_size", "audit_path"}``, an
  RFC 9162 §2.1.3 inclusion proof against the checkpoint;
- ``checkpoint.json`` (BRIEF §5) and ``checkpoint.note`` (C2SP signed note, optional);
- ``manifest.json``: what was exported (filter, record count), signed by the log key;
- ``consistency.json`` (optional): an RFC 9162 §2.1.4 proof from an earlier tree size;
- ``evidence.jsonl`` (optional) and ``README``: outside every hash, not verified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoint import (
    ED25519_PUBLIC_KEY_SIZE,
    CheckpointError,
    SigningKey,
    note_key_id,
    parse_timestamp,
)
from ledger.encoding import Base64Error, b64decode, b64encode, canonical_json
from ledger.errors import LedgerError
from ledger.instants import format_instant

__all__ = [
    "CHECKPOINT_FILE",
    "CONSISTENCY_FILE",
    "ED25519_KEY_SIZE",
    "EVENTS_FILE",
    "EVIDENCE_FILE",
    "EXPORT_FORMAT",
    "MANIFEST_CONTEXT",
    "MANIFEST_FILE",
    "NOTE_FILE",
    "PROOFS_FILE",
    "README_FILE",
    "REQUIRED_RECORD_FIELDS",
    "ExportFilter",
    "VerificationError",
    "decode_b64",
    "manifest_signed_body",
    "parse_public_key",
    "sign_manifest",
]

EXPORT_FORMAT: Final = "consent-ledger-export/1"
EVENTS_FILE: Final = "events.jsonl"
PROOFS_FILE: Final = "proofs.jsonl"
CHECKPOINT_FILE: Final = "checkpoint.json"
NOTE_FILE: Final = "checkpoint.note"
MANIFEST_FILE: Final = "manifest.json"
CONSISTENCY_FILE: Final = "consistency.json"
EVIDENCE_FILE: Final = "evidence.jsonl"
README_FILE: Final = "README"
MANIFEST_CONTEXT: Final = b"consent-ledger/export-manifest/v1\n"
"""Prefix of the signed manifest bytes: no manifest signature can pass for another message."""

REQUIRED_RECORD_FIELDS: Final = {
    "leaf_index": int,
    "event_id": str,
    "type": str,
    "recorded_at": str,
    "effective_at": str,
}
ED25519_KEY_SIZE: Final = ED25519_PUBLIC_KEY_SIZE  # RFC 8032 §5.1.5

_NOTE_VERIFIER_KEY = re.compile(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+")
_PEM_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----"


class VerificationError(LedgerError):
    """Signal that an export does not verify; the message names the first failing item."""

    title = "Export does not verify"


@dataclass(frozen=True)
class ExportFilter:
    """Say which records an export holds; all None is a complete export.

    A record is selected when (no subjects are given, or its subject is one of them, or
    it is a TermsPublished record, which has no subject and is the context of every
    subject's acceptances) and recorded_from <= recorded_at < recorded_to.
    """

    subjects: tuple[str, ...] | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None

    def __post_init__(self) -> None:
        """Normalise subjects to a sorted tuple without repeats."""
        if self.subjects is not None:
            object.__setattr__(self, "subjects", tuple(sorted(set(self.subjects))))

    @property
    def complete(self) -> bool:
        """Tell whether this selects every leaf (no filter at all)."""
        return self.subjects is None and self.recorded_from is None and self.recorded_to is None

    def selects(self, record: Mapping[str, Any]) -> bool:
        """Tell whether a record belongs to an export with this filter."""
        subject = record.get("subject")
        if self.subjects is not None and subject is not None and subject not in self.subjects:
            return False
        if self.recorded_from is None and self.recorded_to is None:
            return True
        recorded_at = parse_timestamp(str(record.get("recorded_at")))
        if self.recorded_from is not None and recorded_at < self.recorded_from:
            return False
        return self.recorded_to is None or recorded_at < self.recorded_to

    def to_json(self) -> dict[str, Any]:
        """Return the filter as manifest.json holds it."""
        return {
            "subjects": list(self.subjects) if self.subjects is not None else None,
            "from": format_instant(self.recorded_from) if self.recorded_from else None,
            "to": format_instant(self.recorded_to) if self.recorded_to else None,
        }

    @classmethod
    def from_json(cls, obj: object) -> ExportFilter:
        """Return the filter a manifest.json holds; raise VerificationError if malformed."""
        if not isinstance(obj, dict) or set(obj) != {"subjects", "from", "to"}:
            raise VerificationError(
                f"{MANIFEST_FILE} filter: got {obj!r}, want an object with subjects, from, to"
            )
        subjects = obj["subjects"]
        if subjects is not None and (
            not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects)
        ):
            raise VerificationError(
                f"{MANIFEST_FILE} filter.subjects: got {subjects!r}, want null or strings"
            )
        return cls(
            tuple(subjects) if subjects is not None else None,
            _optional_time(obj["from"], "filter.from"),
            _optional_time(obj["to"], "filter.to"),
        )


def manifest_signed_body(manifest: Mapping[str, Any]) -> bytes:
    """Return the bytes a manifest signature covers: MANIFEST_CONTEXT || JCS(unsigned fields)."""
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    return MANIFEST_CONTEXT + canonical_json(unsigned)


def sign_manifest(manifest: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Return the manifest with the key's public_key and an Ed25519 signature added."""
    signed = {
        **{name: value for name, value in manifest.items() if name != "signature"},
        "public_key": key.public_key_b64(),
    }
    signed["signature"] = b64encode(key.sign(manifest_signed_body(signed)))
    return signed


def parse_public_key(text: str) -> bytes:
    """Return the raw 32-byte Ed25519 key in text: base64, PEM, or a signed-note verifier key.

    The three forms are what `consent-ledger checkpoint --public-key` prints, what
    OpenSSL writes, and what Go's note package reads (name+keyid+base64(0x01 || key)).
    Raises VerificationError for anything else.
    """
    text = text.strip()
    if text.startswith(_PEM_PUBLIC_KEY):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm) as error:
            raise VerificationError(f"public key PEM: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise VerificationError(
                f"public key PEM: got a {type(key).__name__}, want an Ed25519 key"
            )
        return key.public_bytes_raw()
    try:
        raw = b64decode(text)
    except Base64Error:
        raw = b""
    if len(raw) == ED25519_KEY_SIZE:
        return raw
    if _NOTE_VERIFIER_KEY.fullmatch(text):
        name, key_id, encoded = text.split("+", 2)  # a key name holds no '+'
        blob = decode_b64(encoded, "note verifier key")
        if len(blob) != ED25519_KEY_SIZE + 1 or blob[0] != 1:
            raise VerificationError(
                "note verifier key: got a key that is not type 0x01 (Ed25519) of 32 bytes"
            )
        if note_key_id(name, blob[1:]).hex() != key_id:
            raise VerificationError(
                f"note verifier key: key ID {key_id} does not match name {name!r} and key"
            )
        return blob[1:]
    raise VerificationError(
        f"public key: got {text[:60]!r}, want base64 of the 32-byte raw Ed25519 key, "
        "a PEM PUBLIC KEY, or a note verifier key (name+keyid+base64)"
    )


def _optional_time(value: object, what: str) -> datetime | None:
    """Return a manifest instant (or None)."""
    if value is None:
        return None
    try:
        return parse_timestamp(str(value))
    except CheckpointError as error:
        raise VerificationError(f"{MANIFEST_FILE} {what}: {error}") from None


def decode_b64(text: str, what: str) -> bytes:
    """Return the bytes of canonical standard base64 text; raise VerificationError otherwise."""
    try:
        return b64decode(text)
    except Base64Error as error:
        raise VerificationError(f"{what}: {error}") from None
