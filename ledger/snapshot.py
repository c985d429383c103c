"""Consent snapshots, the pure part: which rows a subject gets, and the signed manifest.

A snapshot answers one question (purpose, party, aspect, at, known_at) for every subject
of the ledger: one row for the subject's catalogue and one per content id that any of
its events for that purpose names. Each row is decided by `ledger.decisions.decide`, the
one implementation of the rules; the writer (projections.snapshots) and the verifier
(recomputing rows from an audit export) both call `subject_rows` here.

The manifest is signed as `checkpoint.json` is: Ed25519 over the JCS form of the signed
object (here the manifest without "signature"), the raw public key and the signature
in base64. `snapshot_id` is the SHA-256 of the
JCS form of the manifest without `snapshot_id`, `public_key` and `signature`.
No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoint import SigningKey
from ledger.decisions import Question, decide
from ledger.errors import LedgerError
from ledger.events import ConsentExpired, ConsentGranted, ConsentRevoked, Entry, TermsPublished
from ledger.records import canonical_json
from ledger.vocabulary import Purpose

SNAPSHOT_FORMAT: Final = "consent-ledger-snapshot/1"
DATA_FILE: Final = "decisions.parquet"
MANIFEST_FILE: Final = "manifest.json"
COLUMNS: Final = ("subject", "content", "allowed", "basis", "event_id", "terms_version")
"""The data file's columns, in order; `content` null is the subject's catalogue row."""
_UNHASHED: Final = frozenset({"snapshot_id", "public_key", "signature"})


class SnapshotError(LedgerError):
    """A snapshot that fails verification: bad signature, digest, format or row."""

    title = "Snapshot does not verify"


@dataclass(frozen=True)
class SnapshotQuestion:
    """The question a snapshot answers for every subject, `at` and `known_at` fixed."""

    purpose: Purpose
    party: str
    aspect: str
    at: datetime
    known_at: datetime

    def about(self, subject: str, content: str | None) -> Question:
        """Return the per-pair question for one row."""
        return Question(
            subject, self.purpose, self.party, content, self.aspect, self.at, self.known_at
        )


@dataclass(frozen=True)
class Row:
    """One decided row of a snapshot (the data file's columns)."""

    subject: str
    content: str | None
    allowed: bool
    basis: str
    event_id: str | None
    terms_version: str | None


def named_contents(entries: Iterable[Entry], purpose: str) -> list[str]:
    """Return the content ids that the subject's events for `purpose` name, sorted."""
    named: set[str] = set()
    for entry in entries:
        event = entry.event
        if (
            isinstance(event, ConsentGranted | ConsentRevoked | ConsentExpired)
            and event.purpose == purpose
            and event.content_ids
        ):
            named.update(event.content_ids)
    return sorted(named)


def subject_rows(
    subject: str,
    entries: Sequence[Entry],
    terms: Mapping[str, TermsPublished],
    question: SnapshotQuestion,
    position: int,
) -> list[Row]:
    """Decide one subject's rows: its catalogue first, then each named content id.

    Requires `entries` to be the subject's events up to the snapshot's `position`.
    """
    rows = []
    for content in [None, *named_contents(entries, question.purpose.name)]:
        decision = decide(entries, terms, question.about(subject, content), position)
        rows.append(
            Row(
                subject,
                content,
                decision.allowed,
                decision.basis.value,
                str(decision.event_ids[0]) if decision.event_ids else None,
                decision.terms_version,
            )
        )
    return rows


def snapshot_id_of(manifest: Mapping[str, Any]) -> str:
    """Return the snapshot id: SHA-256 hex of JCS(manifest minus id, key and signature)."""
    content = {k: v for k, v in manifest.items() if k not in _UNHASHED}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def signed_manifest_body(manifest: Mapping[str, Any]) -> bytes:
    """Return what the signature covers: JCS(manifest minus signature)."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def seal_manifest(manifest: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Return the manifest with its `snapshot_id`, `public_key` and `signature`."""
    sealed = {k: v for k, v in manifest.items() if k not in _UNHASHED}
    sealed["snapshot_id"] = snapshot_id_of(sealed)
    sealed["public_key"] = key.public_key_b64()
    sealed["signature"] = base64.b64encode(key.sign(signed_manifest_body(sealed))).decode()
    return sealed


def check_manifest_signature(manifest: Mapping[str, Any], trusted_key: bytes | None) -> None:
    """Check the manifest's id and signature; with `trusted_key`, that it signed it.

    Raises SnapshotError naming what is wrong.
    """
    want_id = snapshot_id_of(manifest)
    if manifest.get("snapshot_id") != want_id:
        raise SnapshotError(
            f"{MANIFEST_FILE}: snapshot_id is {manifest.get('snapshot_id')!r}, "
            f"want {want_id} (the digest of its content)"
        )
    key_raw = _b64(manifest.get("public_key"), "public_key")
    if trusted_key is not None and key_raw != trusted_key:
        raise SnapshotError(f"{MANIFEST_FILE}: signed by another key than the trusted one")
    signature = _b64(manifest.get("signature"), "signature")
    try:
        Ed25519PublicKey.from_public_bytes(key_raw).verify(
            signature, signed_manifest_body(manifest)
        )
    except (InvalidSignature, ValueError):
        raise SnapshotError(f"{MANIFEST_FILE}: the signature does not verify") from None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise SnapshotError(f"{MANIFEST_FILE}: {what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SnapshotError(f"{MANIFEST_FILE}: {what} is not base64") from None
