"""The README an audit export carries: what it holds and how to check it by hand.

Outside every hash and signature (docs/audit-export.md); its text is part of what an
auditor reads, so it is kept apart from the writer in `projections.export`.
"""

from __future__ import annotations

from typing import Final

import orjson

from ledger.export_format import EVIDENCE_FILE, ExportFilter
from projections.merkle_log import StoredCheckpoint

__all__ = ["export_readme"]


def export_readme(
    checkpoint: StoredCheckpoint, export_filter: ExportFilter, records: int, evidence: bool
) -> str:
    """Return the README of one export: what it holds and how to check it by hand."""
    cp = checkpoint.checkpoint
    scope = (
        f"the COMPLETE log: every leaf 0 … {cp.tree_size - 1}, in order"
        if export_filter.complete
        else f"a FILTERED part of the log: {orjson.dumps(export_filter.to_json()).decode()}"
    )
    evidence_line = (
        f"- {EVIDENCE_FILE}: decrypted evidence of exported records, OUTSIDE every hash and\n"
        "  signature: it is the exporter's word, not part of the proof.\n"
        if evidence
        else ""
    )
    return _README.format(
        log_id=cp.log_id,
        tree_size=cp.tree_size,
        root=cp.root_hash.hex(),
        timestamp=checkpoint.to_json()["timestamp"],
        public_key=checkpoint.to_json()["public_key"],
        records=records,
        scope=scope,
        evidence_line=evidence_line,
    )


_README: Final = """\
Consent Ledger audit export ({log_id})

This directory holds {records} records of the consent ledger "{log_id}":
{scope}.
Each record is proven to be a leaf of the ledger's Merkle tree (RFC 9162) of
{tree_size} leaves with root
    {root}
signed at {timestamp} by the Ed25519 public key
    {public_key}
Get that public key from the platform by another channel before trusting it.

Files
- events.jsonl: one record per line; each line is the RFC 8785 (JCS) form of the
  record, i.e. exactly the bytes that were hashed.
- proofs.jsonl: line N proves line N of events.jsonl:
  {{"leaf_index", "tree_size", "audit_path": [hex, ...]}}.
- checkpoint.json: {{log_id, tree_size, root_hash, timestamp, public_key, signature}};
  the signature (base64) is Ed25519 over JCS({{log_id, tree_size, root_hash, timestamp}}).
- checkpoint.note: the same tree head as a C2SP signed note (c2sp.org/tlog-checkpoint).
- manifest.json: what was exported (filter, record count), signed by the same key
  over "consent-ledger/export-manifest/v1\\n" followed by JCS of every field but signature.
- consistency.json (when present): an RFC 9162 proof that this tree extends an
  earlier checkpoint's tree.
{evidence_line}
Verify with the tool
    consent-ledger verify THIS_DIR --public-key KEY_FILE [--since-checkpoint OLD.json]

Verify by hand (any language; the full specification is docs/audit-export.md in
the Consent Ledger source)
1. Check the checkpoint signature: Ed25519-verify the base64 "signature" over the
   bytes {{"log_id":...,"root_hash":...,"timestamp":...,"tree_size":...}} (keys sorted,
   no spaces: JCS) with the trusted public key.
2. For each line N of events.jsonl (without its newline):
   leaf_hash = SHA-256(0x00 || line bytes). In a shell:
       sed -n 'Np' events.jsonl | tr -d '\\n' | (printf '\\000'; cat) | sha256sum
3. Fold line N of proofs.jsonl up to the root with the algorithm of RFC 9162
   section 2.1.3.2 (interior node = SHA-256(0x01 || left || right)); the result
   must equal root_hash in checkpoint.json.
4. For a complete export, leaf_index must run 0, 1, 2 ... tree_size - 1 with no gap;
   for a filtered one, it must increase.
5. Personal data appears in records only as AES-GCM ciphertext (evidence.sealed);
   erasing a person destroys the key, never a record, so proofs survive erasure.
"""
