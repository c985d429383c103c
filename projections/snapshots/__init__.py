"""Signed consent snapshots: write, verify and filter with them (docs/training-lineage.md).

- `writer`: decide every subject of the ledger for one question and write Parquet,
  `manifest.json` and its signature, streaming (memory stays flat).
- `verify`: check a snapshot's signature and digests, and recompute its rows from a
  verified audit export.
- `filter`: the vectorised filter of candidate pairs against a snapshot (pyarrow).
- `lineage`: datasets built from snapshots, their items and the impacts of later events.
"""
