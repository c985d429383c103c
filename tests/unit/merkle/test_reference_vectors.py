"""Conformance with the RFC 6962 / RFC 9162 proof vectors of transparency-dev/merkle.

The vectors are read in place, never copied into this repository: from
$MERKLE_VECTORS_DIR, else from ../shared/vectors/rfc6962-transparency-dev-merkle
beside the clone. Where neither exists the tests skip, saying so; under CI=true a
missing folder fails instead, so CI can never pass without running them.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ledger.merkle import ProofError, verify_consistency, verify_inclusion

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VECTORS_DIR = REPO_ROOT.parent / "shared" / "vectors" / "rfc6962-transparency-dev-merkle"


def _find_vectors_dir() -> tuple[Path | None, str]:
    """Return the vectors folder, or None and the reason it was not found."""
    candidates = []
    if configured := os.environ.get("MERKLE_VECTORS_DIR"):
        candidates.append(Path(configured))
    candidates.append(DEFAULT_VECTORS_DIR)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate, ""
    looked = ", ".join(str(c) for c in candidates)
    return (
        None,
        f"RFC 6962 reference vectors not found (looked in {looked}; set MERKLE_VECTORS_DIR)",
    )


VECTORS_DIR, MISSING_REASON = _find_vectors_dir()


def _cases(kind: str) -> list[Any]:
    """Return one pytest param per vector file of kind, or one 'missing' param."""
    if VECTORS_DIR is None:
        return [pytest.param(None, id="vectors-missing")]
    base = VECTORS_DIR / kind
    return [
        # Ids are paths below the kind folder: "<tree>/<file>" would collide between
        # inclusion/0/empty-root and inclusion/additional/0/empty-root.
        pytest.param(path, id=path.relative_to(base).with_suffix("").as_posix())
        for path in sorted(base.rglob("*.json"))
    ]


INCLUSION_CASES = _cases("inclusion")
CONSISTENCY_CASES = _cases("consistency")


def _load(case: Path | None) -> dict[str, Any]:
    """Return the vector of case, skipping (or failing under CI=true) if vectors are absent."""
    if case is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING_REASON)
        pytest.skip(MISSING_REASON)
    vector: dict[str, Any] = json.loads(case.read_text())
    if case.name == "happy-path.json":
        assert vector["wantErr"] is False, f"{case}: a happy path must expect success"
    return vector


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in vector["proof"] or []]  # JSON null is the empty proof


def test_reference_vectors_folder_holds_inclusion_and_consistency_trees() -> None:
    if VECTORS_DIR is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING_REASON)
        pytest.skip(MISSING_REASON)
    for kind in ("inclusion", "consistency"):
        happy = sorted((VECTORS_DIR / kind).glob("*/happy-path.json"))
        assert len(happy) >= 5, f"{kind}: got {len(happy)} happy paths, want >= 5"


@pytest.mark.parametrize("case", INCLUSION_CASES)
def test_inclusion_vector_verifies_exactly_when_it_expects_to(case: Path | None) -> None:
    vector = _load(case)
    args = (
        _b64(vector["leafHash"]),
        vector["leafIdx"],
        vector["treeSize"],
        _proof(vector),
        _b64(vector["root"]),
    )
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", CONSISTENCY_CASES)
def test_consistency_vector_verifies_exactly_when_it_expects_to(case: Path | None) -> None:
    vector = _load(case)
    args = (
        vector["size1"],
        vector["size2"],
        _proof(vector),
        _b64(vector["root1"]),
        _b64(vector["root2"]),
    )
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
