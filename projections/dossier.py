"""Build and check a dispute dossier: what a subject had allowed at D, as known at K, proven.

A dossier is one self-contained JSON document a court can check offline. It holds:

- the question (`at` D, `known_at` K, party, content, aspect, purposes) with every
  default filled in, so the document says exactly what it answers;
- one decision per purpose, decided (by the pure rules of `ledger.decisions`) from
  exactly the events the document carries;
- the terms version in force at D, with its document hash and clauses;
- every event about the subject that the ledger held at K, in ledger order, plus the
  publication of the terms in force, each with its readable form and opened evidence
  (`projections.history.history_json`), the log `record` that was hashed, and its RFC
  9162 inclusion proof;
- the signed checkpoint (tree head) every proof leads to;
- the `overview` (`projections.timeline_chart`): the chart and the matrix the timeline page
  draws, which the PDF prints; a reading aid decided by the same rules, not itself proven.

Opened evidence is the exporter's word: the hashed record holds personal data only as
ciphertext. `verify_dossier` is the reference check of the proofs (docs/legal-timeline.md
explains it step by step for anyone writing their own).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ledger.application import ConsentLedger, HistoryItem
from ledger.checkpoint import CheckpointError, verify_signed_checkpoint
from ledger.decisions import Decision, decide, known_state, terms_in_force
from ledger.errors import NotFoundError
from ledger.events import Entry, TermsPublished, terms_stream_id
from ledger.instants import format_instant
from ledger.merkle import ProofError, verify_inclusion
from ledger.records import RecordError, leaf_hash_of, record_of
from ledger.store import stream_positions
from ledger.verify import VerificationError
from ledger.vocabulary import ALL_ASPECTS, PLATFORM, Basis
from projections.export import ExportMismatchError
from projections.history import history_json
from projections.merkle_log import LeafRow, LogService, StoredCheckpoint
from projections.timeline_chart import OverviewRequest, subject_overview

DOSSIER_FORMAT: Final = "consent-ledger-dossier/1"
CATCH_UP_SECONDS: Final = 5.0  # log catch-up work one dossier may do before it answers

BASIS_MEANINGS: Final[Mapping[Basis, str]] = {
    Basis.EXPLICIT_GRANT: "an explicit grant by the subject decides",
    Basis.EXPLICIT_REVOCATION: "an explicit revocation by the subject decides",
    Basis.TERMS_DEFAULT: "no explicit choice applies: the default of the terms in force decides",
    Basis.NO_TERMS_ACCEPTED: "no explicit choice applies and no terms were in force: denied",
    Basis.OPT_IN_REQUIRED: "an opt-in purpose or a third party, with no applicable explicit "
    "grant: denied",
    Basis.GRANT_EXPIRED: "the grant that would decide had expired by then: denied",
    Basis.ERASED: "the subject was erased: denied everything",
    Basis.CONTRIBUTOR_DENIED: "a contributor of the registered work did not allow it "
    "(named in `contributor`, with its own basis): denied",
}
"""What each basis means, in words a court reads."""

VERIFICATION_STEPS: Final = (
    "For each event with a proof: compute leaf_hash = SHA-256(0x00 || JCS(record)), where "
    "JCS is RFC 8785 canonical JSON of the `record` object exactly as given; it must equal "
    "proof.leaf_hash.",
    "Fold proof.audit_path from that leaf hash as RFC 9162 section 2.1.3.2 describes "
    "(interior nodes are SHA-256(0x01 || left || right)), for leaf proof.leaf_index in a "
    "tree of proof.tree_size leaves; the result must equal checkpoint.root_hash.",
    "Check checkpoint.signature (base64 Ed25519) over JCS({log_id, tree_size, root_hash, "
    "timestamp}) with checkpoint.public_key (base64, raw 32 bytes); compare that key with "
    "the ledger's published key, obtained independently.",
    "The readable fields and `evidence` of each event are a convenience: the `record` is "
    "what is proven. Personal data in evidence is outside every hash (the record holds it "
    "only as AES-GCM ciphertext).",
    "To re-derive each decision, apply the decision rules (BRIEF section 2) to the records "
    "of the subject's events: fold those with recorded_at <= known_at and effective_at <= at, "
    "ignoring events voided by known_at.",
)


@dataclass(frozen=True)
class DossierRequest:
    """What a dossier answers: one subject, at D as known at K, for some purposes.

    `at` and `known_at` None mean the instant the dossier is made; `purposes` empty means
    every purpose of the vocabulary.
    """

    subject: str
    at: datetime | None = None
    known_at: datetime | None = None
    purposes: Sequence[str] = ()
    party: str = PLATFORM
    content: str | None = None
    aspect: str = ALL_ASPECTS


class DossierVerificationError(VerificationError):
    """Signal that a dossier does not verify; the message names the first failing item."""

    title = "Dossier does not verify"


class UnknownSubjectDossierError(NotFoundError):
    """Refuse a dossier about a subject the ledger holds no event about."""

    title = "Unknown subject"

    def __init__(self, subject: str) -> None:
        super().__init__(f"the ledger holds no event about subject {subject!r}")
        self.subject = subject


def build_dossier(
    ledger: ConsentLedger,
    log: LogService | None,
    request: DossierRequest,
    *,
    catch_up_seconds: float = CATCH_UP_SECONDS,
) -> dict[str, Any]:
    """Return the dossier of `request` as a JSON object (see the module docstring).

    Decisions are decided from the same events the dossier lists (the reference rules,
    not the read models), so the document is consistent in itself. With `log` None, or
    when the log cannot cover an event within `catch_up_seconds`, events carry `proof:
    null` and `proofs` says "partial" or "unavailable". Raises the ledger's errors for an
    invalid question, UnknownSubjectDossierError for a subject without events, and
    ExportMismatchError when a stored event no longer matches its leaf in the log.
    """
    now = ledger.clock.now()
    purposes = list(dict.fromkeys(request.purposes)) or list(ledger.vocabulary.purposes)
    questions = [
        ledger.question(
            request.subject,
            purpose,
            request.party,
            request.content,
            request.aspect,
            request.at or now,
            request.known_at or now,
        )
        for purpose in purposes
    ]
    at, known_at = questions[0].at, questions[0].known_at
    every = ledger.subject_entries(request.subject)
    if not every:
        raise UnknownSubjectDossierError(request.subject)
    items = ledger.history(request.subject, known_at=known_at)
    entries = [item.entry for item in items]
    catalog = ledger.terms_catalog()
    position = ledger.ledger_position(known_at)
    decisions = [decide(entries, catalog, q, position, ledger.subject_entries) for q in questions]

    in_force = terms_in_force(known_state(entries, known_at).live, catalog, at)
    shown = list(items)
    if in_force is not None:
        shown.append(HistoryItem(_publication_entry(ledger, in_force[1]), None, None))
    shown.sort(key=lambda item: item.entry.position)

    proofs, checkpoint = _proofs(log, [item.entry for item in shown], catch_up_seconds)
    cited = _cited_by(purposes, decisions)
    events = []
    for item in shown:
        body = history_json(item)
        body["subject"] = getattr(item.entry.event, "subject", None)
        body["rests_on"] = cited.get(body["event_id"], [])
        body.update(proofs.get(item.entry.position, {"record": None, "proof": None}))
        events.append(body)
    proven = sum(1 for e in events if e["proof"] is not None)
    return {
        "format": DOSSIER_FORMAT,
        "subject": request.subject,
        "generated_at": format_instant(now),
        "question": {
            "at": format_instant(at),
            "known_at": format_instant(known_at),
            "party": questions[0].party,
            "content": request.content,
            "aspect": questions[0].aspect,
            "purposes": purposes,
        },
        "ledger_position": position,
        "decisions": [
            {"purpose": purpose, **decision.to_json(), "meaning": BASIS_MEANINGS[decision.basis]}
            for purpose, decision in zip(purposes, decisions, strict=True)
        ],
        "terms_in_force": _terms_json(in_force),
        "events": events,
        "recorded_after_known_at": len(every) - len(items),
        "proofs": "complete" if proven == len(events) else "partial" if proven else "unavailable",
        "checkpoint": checkpoint.to_published_json() if checkpoint is not None else None,
        "verification": list(VERIFICATION_STEPS),
        # The picture (chart and matrix) at D as known at K: a reading aid, not proven.
        "overview": subject_overview(ledger, OverviewRequest(request.subject, at, known_at)),
    }


def _publication_entry(ledger: ConsentLedger, published: TermsPublished) -> Entry:
    """Return the ledger entry of a terms version's publication (its stream's position)."""
    positions = stream_positions(ledger.recorder, terms_stream_id(published.version))
    return Entry(positions[published.originator_version], published)


def _cited_by(purposes: Sequence[str], decisions: Sequence[Decision]) -> dict[str, list[str]]:
    """Return, by event id, the purposes whose decision names that event."""
    cited: dict[str, list[str]] = {}
    for purpose, decision in zip(purposes, decisions, strict=True):
        for event_id in decision.event_ids:
            cited.setdefault(str(event_id), []).append(purpose)
    return cited


def _terms_json(in_force: tuple[Entry, TermsPublished] | None) -> dict[str, Any] | None:
    """Return the terms version in force with its hash, clauses and the two events behind it."""
    if in_force is None:
        return None
    acceptance, published = in_force
    return {
        "version": published.version,
        "effective_from": format_instant(published.effective_from),
        "document_sha256": published.document_sha256,
        "clauses": published.clauses,
        "publication_event_id": str(published.event_id),
        "acceptance_event_id": str(acceptance.event.event_id),
        "accepted_effective_at": format_instant(acceptance.event.effective_at),
    }


def _proofs(
    log: LogService | None, entries: Sequence[Entry], catch_up_seconds: float
) -> tuple[dict[int, dict[str, Any]], StoredCheckpoint | None]:
    """Return, by position, each logged entry's record and inclusion proof, and the checkpoint.

    Proves against the latest signed checkpoint when it covers every logged entry, and
    otherwise signs one of the whole logged tree (as an export does). Each record is
    re-rendered and checked against its leaf: a dossier never carries one that does not
    verify.
    """
    if log is None or not entries:
        return {}, None
    log.catch_up(deadline=time.monotonic() + catch_up_seconds)
    leaves = log.leaves_at_positions([entry.position for entry in entries])
    if not leaves:
        return {}, None
    latest = log.checkpoint()
    needed = max(leaf.leaf_index for leaf in leaves.values()) + 1
    checkpoint = latest if latest is not None and latest.tree_size >= needed else None
    checkpoint = checkpoint or log.head_checkpoint()
    size = checkpoint.tree_size
    proven: list[tuple[Entry, LeafRow]] = [
        (entry, leaves[entry.position])
        for entry in entries
        if entry.position in leaves and leaves[entry.position].leaf_index < size
    ]
    paths = log.inclusion_proofs([leaf.leaf_index for _, leaf in proven], size)
    found: dict[int, dict[str, Any]] = {}
    for (entry, leaf), path in zip(proven, paths, strict=True):
        record = record_of(entry, leaf.leaf_index)
        if leaf_hash_of(record) != leaf.leaf_hash:
            raise ExportMismatchError(
                f"the stored event at position {leaf.position} no longer matches leaf "
                f"{leaf.leaf_index} of the log; run `consent-ledger audit`"
            )
        found[entry.position] = {
            "record": record,
            "proof": {
                "leaf_index": leaf.leaf_index,
                "tree_size": size,
                "leaf_hash": leaf.leaf_hash.hex(),
                "audit_path": [h.hex() for h in path],
            },
        }
    return found, checkpoint


def verify_dossier(dossier: Mapping[str, Any], public_key: str | None = None) -> int:
    """Check a dossier's proofs offline; return how many events it proves.

    Checks the checkpoint's signature (with `public_key`, base64, the trusted key; with
    None the embedded one, which proves integrity but not origin), then for each event
    with a proof: that its record hashes to the proof's leaf hash, names the event, and
    that the audit path leads to the checkpoint's root. Raises DossierVerificationError naming
    the first event or field that fails.
    """
    if dossier.get("format") != DOSSIER_FORMAT:
        raise DossierVerificationError(
            f"format: got {dossier.get('format')!r}, want {DOSSIER_FORMAT!r}"
        )
    events = dossier.get("events")
    if not isinstance(events, list):
        raise DossierVerificationError("events: want a list")
    with_proofs = [e for e in events if isinstance(e, Mapping) and e.get("proof") is not None]
    if not with_proofs:
        return 0
    head = dossier.get("checkpoint")
    if not isinstance(head, Mapping):
        raise DossierVerificationError("checkpoint: events carry proofs but no checkpoint is given")
    try:
        checkpoint = verify_signed_checkpoint(head, public_key)
    except CheckpointError as error:
        raise DossierVerificationError(f"checkpoint: {error}") from None
    for event in with_proofs:
        _verify_event(event, checkpoint.tree_size, checkpoint.root_hash)
    return len(with_proofs)


def _verify_event(event: Mapping[str, Any], tree_size: int, root: bytes) -> None:
    """Check one event's record against its proof and the checkpoint's root."""
    where = f"event {event.get('event_id')!r}"
    record, proof = event.get("record"), event.get("proof")
    if not isinstance(record, Mapping) or not isinstance(proof, Mapping):
        raise DossierVerificationError(f"{where}: want a record object and a proof object")
    for name in ("event_id", "position", "type"):
        if record.get(name) != event.get(name):
            raise DossierVerificationError(
                f"{where}: record {name} is {record.get(name)!r}, the event shows "
                f"{event.get(name)!r}"
            )
    try:
        leaf = leaf_hash_of(record)
    except RecordError as error:
        raise DossierVerificationError(f"{where}: record has no canonical form: {error}") from None
    if proof.get("leaf_hash") != leaf.hex():
        raise DossierVerificationError(
            f"{where}: record hashes to {leaf.hex()}, proof.leaf_hash is {proof.get('leaf_hash')}"
        )
    index = proof.get("leaf_index")
    if (
        not isinstance(index, int)
        or index != record.get("leaf_index")
        or proof.get("tree_size") != tree_size
    ):
        raise DossierVerificationError(
            f"{where}: proof is for leaf {index} of {proof.get('tree_size')}, want leaf "
            f"{record.get('leaf_index')} of the checkpoint's {tree_size}"
        )
    try:
        path = [bytes.fromhex(h) for h in _strings(proof.get("audit_path"), where)]
        verify_inclusion(leaf, index, tree_size, path, root)
    except (ProofError, ValueError) as error:
        raise DossierVerificationError(f"{where}: inclusion proof: {error}") from None


def _strings(value: object, where: str) -> Iterable[str]:
    """Return value as a list of strings, or raise DossierVerificationError."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DossierVerificationError(f"{where}: audit_path: want a list of hex strings")
    return value
