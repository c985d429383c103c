"""Signed consent receipts of one ledger event, and their offline verification.

A receipt is an ISO/IEC TS 27560 consent record, as W3C DPV JSON-LD (`dpv`, the default)
or in the Kantara Consent Receipt v1.1 shape (`kantara`). It carries `ledger_proof`: the
event's log record exactly as hashed (BRIEF §5), its RFC 9162 inclusion proof and the
signed checkpoint it is proven against; and it is signed with the checkpoint key,
Ed25519 over the RFC 8785 canonical JSON of the receipt without its `signature`.
Evidence (personal data) appears only while the subject is not erased.

The DPV form is checked by JSON-LD expansion (pyld) against the context the project
ships (`receipt-context.json`): the document loader serves that one file and refuses
every other URL, so nothing is fetched at run time.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Final
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyld import jsonld

from ledger.application import ConsentLedger
from ledger.checkpoint import CheckpointError, verify_signed_checkpoint
from ledger.decisions import known_state, terms_in_force
from ledger.errors import InvalidInputError, UnknownEventError
from ledger.events import (
    ConsentExpired,
    ConsentGranted,
    ConsentRevoked,
    Entry,
    SubjectErased,
    TermsAccepted,
)
from ledger.instants import format_instant
from ledger.merkle import ProofError, verify_inclusion
from ledger.records import canonical_json, leaf_hash_of, record_of
from projections.merkle_log import LogService

FORMATS: Final = ("dpv", "kantara")
CONTEXT_URL: Final = "https://consent-ledger.dev/ns/receipt/v1.jsonld"
DPV_CONTEXT: Final = "https://w3id.org/dpv"
KANTARA_VERSION: Final = "KI-CR-v1.1.0"
JURISDICTION: Final = "EU"
WITHDRAWAL: Final = (
    "Revoke at any time: `consent-ledger revoke SUBJECT PURPOSE` or "
    "POST /v1/subjects/{subject}/revocations with the same purpose, party and scope."
)
_RECEIPTED = (TermsAccepted, ConsentGranted, ConsentRevoked, ConsentExpired)


class ReceiptError(InvalidInputError):
    """Refuse a receipt for an event that is not a consent event."""

    title = "No receipt for this event"


def build_receipt(
    ledger: ConsentLedger, log: LogService, event_id: UUID, *, fmt: str = "dpv"
) -> dict[str, Any]:
    """Return the signed receipt of one consent event, proven against a fresh checkpoint.

    Raises UnknownEventError for an unknown id, ReceiptError for an event that is not a
    terms acceptance, grant, revocation or expiry, or an unknown format.
    """
    if fmt not in FORMATS:
        raise ReceiptError(f"receipt format {fmt!r}: want one of {', '.join(FORMATS)}")
    entry = ledger.find_event(event_id)
    if entry is None:
        raise UnknownEventError(str(event_id))
    event = entry.event
    if not isinstance(event, _RECEIPTED):
        raise ReceiptError(
            f"event {event_id} is a {type(event).type_name}; receipts are for terms "
            "acceptances, grants, revocations and expiries"
        )
    log.catch_up()
    head = log.head_checkpoint()
    proof = log.inclusion(entry.position, head.tree_size)
    record = record_of(entry, proof.leaf_index)
    assert leaf_hash_of(record) == proof.leaf_hash, "the log's leaf is this event's record"
    subject_entries = ledger.subject_entries(event.subject)
    erased = any(isinstance(e.event, SubjectErased) for e in subject_entries)
    item = next(i for i in ledger.history(event.subject) if i.entry.position == entry.position)
    facts = _facts(
        ledger, entry, subject_entries, voided=item.voided_by is not None, controller=log.log_id
    )
    if not erased and item.evidence is not None:
        facts["evidence"] = item.evidence
    body = _dpv(facts) if fmt == "dpv" else _kantara(facts)
    body["ledger_proof"] = {
        "record": record,
        "inclusion": proof.to_json(),
        "checkpoint": head.to_json(),
    }
    body["public_key"] = log.key.public_key_b64()
    body["signature"] = base64.b64encode(log.key.sign(receipt_signed_body(body))).decode()
    return body


def receipt_signed_body(receipt: Mapping[str, Any]) -> bytes:
    """Return the bytes a receipt's signature covers: JCS of all but `signature`."""
    return canonical_json({k: v for k, v in receipt.items() if k != "signature"})


def _facts(
    ledger: ConsentLedger, entry: Entry, history: list[Entry], *, voided: bool, controller: str
) -> dict[str, Any]:
    """Return what both formats say about the event, in plain values."""
    event = entry.event
    assert isinstance(event, _RECEIPTED)
    terms_version = None
    if isinstance(event, TermsAccepted):
        published = ledger.terms(event.version)
    else:
        live = known_state(history, event.recorded_at).live
        in_force = terms_in_force(live, ledger.terms_catalog(), event.effective_at)
        published = in_force[1] if in_force else None
    if published is not None:
        terms_version = {"version": published.version, "document_sha256": published.document_sha256}
    actor = getattr(event, "actor", None)
    if voided:
        state = "ConsentInvalidated"
    elif isinstance(event, ConsentExpired):
        state = "ConsentExpired"
    elif isinstance(event, ConsentRevoked):
        state = "ConsentWithdrawn" if actor is None else "ConsentRevoked"
    else:
        state = "ConsentGiven"
    purpose = getattr(event, "purpose", None)
    party = getattr(event, "party", "platform")
    expires = event.expires_at if isinstance(event, ConsentGranted) else None
    return {
        "event_id": str(event.event_id),
        "subject": event.subject,
        "actor": actor or event.subject,
        "purpose": purpose,
        "party": party,
        "processing": {
            "purpose": purpose,
            "scope": getattr(event, "content_ids", None) or "catalogue",
            "aspect": getattr(event, "aspect", "all"),
            "model": getattr(event, "model", None),
        },
        "terms": terms_version,
        "effective_at": event.effective_at,
        "recorded_at": event.recorded_at,
        "expires_at": expires,
        "state": state,
        "conditions": list(getattr(event, "conditions", None) or []),
        "controller": controller,
    }


def _dpv(facts: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@context": [DPV_CONTEXT, CONTEXT_URL],
        "@id": f"urn:uuid:{facts['event_id']}",
        "@type": "ConsentRecord",
        "format": "dpv",
        "record_id": facts["event_id"],
        "principal": facts["subject"],
        "actor": facts["actor"],
        "controller": facts["controller"],
        "purpose": facts["purpose"] or "terms-of-service",
        "processing": facts["processing"],
        "recipients": [facts["party"]],
        "terms": facts["terms"],
        "event_time": format_instant(facts["effective_at"]),
        "recorded_at": format_instant(facts["recorded_at"]),
        "state": facts["state"],
        "validity": {
            "from": format_instant(facts["effective_at"]),
            "until": format_instant(facts["expires_at"]) if facts["expires_at"] else None,
        },
        "withdrawal": WITHDRAWAL,
        "jurisdiction": JURISDICTION,
        "conditions": facts["conditions"],
    }
    if "evidence" in facts:
        body["evidence"] = facts["evidence"]
    return body


def _kantara(facts: Mapping[str, Any]) -> dict[str, Any]:
    effective: datetime = facts["effective_at"]
    evidence = facts.get("evidence") or {}
    body: dict[str, Any] = {
        "version": KANTARA_VERSION,
        "format": "kantara",
        "jurisdiction": JURISDICTION,
        "consentTimestamp": int(effective.timestamp()),
        "collectionMethod": str(evidence.get("channel", "consent-ledger")),
        "consentReceiptID": facts["event_id"],
        "language": "en",
        "piiPrincipalId": facts["subject"],
        "piiControllers": [{"piiController": facts["controller"], "onBehalf": False}],
        "policyUrl": None,
        "services": [
            {
                "service": facts["party"],
                "purposes": [
                    {
                        "purpose": facts["purpose"] or "terms-of-service",
                        "purposeCategory": [facts["processing"]["aspect"]],
                        "consentType": "EXPLICIT",
                        "piiCategory": [facts["processing"]["aspect"]],
                        "primaryPurpose": True,
                        "termination": format_instant(facts["expires_at"])
                        if facts["expires_at"]
                        else "until withdrawn",
                        "thirdPartyDisclosure": facts["party"] != "platform",
                        "thirdPartyName": facts["party"],
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
        "state": facts["state"],
        "actor": facts["actor"],
        "terms": facts["terms"],
        "conditions": facts["conditions"],
    }
    if "evidence" in facts:
        body["evidence"] = facts["evidence"]
    return body


# --------------------------------------------------------------------- verify


@cache
def shipped_context() -> dict[str, Any]:
    """Return the JSON-LD context the project ships for receipts."""
    text = resources.files("projections").joinpath("receipt-context.json").read_bytes()
    context: dict[str, Any] = orjson.loads(text)
    return context


def _local_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Serve the shipped context (also for DPV's own URL, whose terms it maps); refuse
    every other URL, so that expansion never reaches the network."""
    if url in (CONTEXT_URL, DPV_CONTEXT):
        document = shipped_context() if url == CONTEXT_URL else {"@context": {}}
        return {"contextUrl": None, "documentUrl": url, "document": document}
    raise ReceiptError(f"JSON-LD context {url!r} is not shipped with the project")


def expand_dpv(receipt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Expand a DPV receipt with the shipped context; raise ReceiptError if a term of
    the receipt has no definition (JSON-LD would silently drop it).
    """
    try:
        expanded: list[dict[str, Any]] = jsonld.expand(
            dict(receipt), {"documentLoader": _local_loader}
        )
    except jsonld.JsonLdError as error:
        raise ReceiptError(f"JSON-LD expansion failed: {error}") from None
    if len(expanded) != 1:
        raise ReceiptError(f"JSON-LD expansion: got {len(expanded)} nodes, want 1")
    defined = set(shipped_context()["@context"])
    undefined = sorted(k for k in receipt if not k.startswith("@") and k not in defined)
    if undefined:
        raise ReceiptError(f"JSON-LD: terms without a definition: {', '.join(undefined)}")
    return expanded


def verify_receipt(receipt: Mapping[str, Any], public_key: bytes) -> list[str]:
    """Check a receipt offline against a trusted raw Ed25519 public key.

    Returns what fails, one line each (empty: the receipt verifies): the key, the
    receipt's signature, the checkpoint's signature, the record's leaf hash and its
    inclusion proof against the checkpoint's root, and the DPV JSON-LD expansion.
    """
    failures: list[str] = []
    trusted = base64.b64encode(public_key).decode()
    if receipt.get("public_key") != trusted:
        failures.append(f"public_key: got {receipt.get('public_key')!r}, want {trusted!r}")
    try:
        signature = base64.b64decode(str(receipt.get("signature", "")), validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, receipt_signed_body(receipt)
        )
    except (ValueError, InvalidSignature):
        failures.append("signature: does not verify over the receipt's canonical JSON")
    proof = receipt.get("ledger_proof")
    if not isinstance(proof, Mapping):
        return [*failures, "ledger_proof: missing"]
    failures.extend(_verify_ledger_proof(receipt, proof, trusted))
    if receipt.get("format") == "dpv":
        try:
            expand_dpv(receipt)
        except ReceiptError as error:
            failures.append(error.detail)
    return failures


def _verify_ledger_proof(
    receipt: Mapping[str, Any], proof: Mapping[str, Any], trusted: str
) -> list[str]:
    failures: list[str] = []
    try:
        checkpoint = verify_signed_checkpoint(proof.get("checkpoint") or {}, trusted)
    except CheckpointError as error:
        return [f"checkpoint: {error}"]
    record = proof.get("record")
    inclusion = proof.get("inclusion")
    if not isinstance(record, Mapping) or not isinstance(inclusion, Mapping):
        return ["ledger_proof: record or inclusion missing"]
    receipt_id = receipt.get("record_id", receipt.get("consentReceiptID"))
    if record.get("event_id") != receipt_id:
        failures.append(f"record event_id: got {record.get('event_id')!r}, want {receipt_id!r}")
    try:
        leaf = leaf_hash_of(record)
        path = [bytes.fromhex(h) for h in inclusion["audit_path"]]
        index, size = int(record["leaf_index"]), int(inclusion["tree_size"])
        if size != checkpoint.tree_size:
            failures.append(
                f"inclusion tree_size: got {size}, want the checkpoint's {checkpoint.tree_size}"
            )
        verify_inclusion(leaf, index, size, path, checkpoint.root_hash)
    except (KeyError, TypeError, ValueError, ProofError) as error:
        failures.append(f"inclusion proof: {error}")
    return failures
