"""Keep the ledger's RFC 9162 transparency log as a tracked projection, and serve its proofs.

Leaves are the ledger's events in position order, numbered 0, 1, 2 … without gaps
(positions may have gaps on PostgreSQL). The log lives in four tables beside the
event store, on SQLite and PostgreSQL alike (`tables`). One module per duty:

- `types`: the stored values and answers (leaves, proofs, checkpoints) and the errors;
- `node_store`: the Merkle tree's NodeStore port over the SQL tables;
- `tables`: the DDL and the tracking row every part shares;
- `checkpoints`: signed tree heads, taken by policy, stored in both encodings;
- `proofs`: leaves, inclusion and consistency proofs;
- `service`: `LogService`, the projection itself (catch-up, worker loop) and all of the above;
- `answers`: `LogAnswers`, the JSON the HTTP routes return.
"""

from projections.merkle_log.answers import LogAnswers
from projections.merkle_log.node_store import SqlNodeStore, batch_inclusion_proofs
from projections.merkle_log.service import DEFAULT_BATCH, LogService
from projections.merkle_log.types import (
    ConsistencyProof,
    InclusionProof,
    LeafRow,
    LogNotReadyError,
    ProofRequestError,
    StoredCheckpoint,
    decode_entry,
)

__all__ = [
    "DEFAULT_BATCH",
    "ConsistencyProof",
    "InclusionProof",
    "LeafRow",
    "LogAnswers",
    "LogNotReadyError",
    "LogService",
    "ProofRequestError",
    "SqlNodeStore",
    "StoredCheckpoint",
    "batch_inclusion_proofs",
    "decode_entry",
]
