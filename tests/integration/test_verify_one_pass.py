"""Verify's one-pass check of a complete export agrees with the per-proof check, byte by byte.

`_verify_complete_records` rebuilds the tree from the leaves and compares the proofs
with it; `_verify_records_by_proof` folds every proof up to the root (RFC 9162
§2.1.3.2). Any single changed byte of events.jsonl or proofs.jsonl must make both
refuse, or (never, for these files) both accept; and verify's error is the per-proof
check's, naming the first bad line.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, verify_signed_checkpoint
from ledger.export_format import ExportFilter
from ledger.verify import (
    VerificationError,
    _OnePassRefusal,
    _verify_complete_records,
    _verify_records_by_proof,
    verify_export,
)
from tests.integration.log_support import TAMPER_ALPHABET, export_sqlite_ledger

COMPLETE = ExportFilter(None, None, None)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Checkpoint]:
    """Export a ledger of 37 events (a tree with a ragged right edge), once."""
    directory, _ = export_sqlite_ledger(tmp_path_factory.mktemp("one-pass"), subjects=12)
    checkpoint_obj = orjson.loads((directory / "checkpoint.json").read_bytes())
    return directory, verify_signed_checkpoint(checkpoint_obj, None)


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="one-pass-") as directory:
        yield Path(directory)


def one_pass_refuses(directory: Path, checkpoint: Checkpoint) -> bool:
    try:
        _verify_complete_records(directory, checkpoint, None)
    except (_OnePassRefusal, VerificationError):
        return True
    return False


def per_proof_refuses(directory: Path, checkpoint: Checkpoint) -> bool:
    try:
        _verify_records_by_proof(directory, checkpoint, COMPLETE, None)
    except VerificationError:
        return True
    return False


def test_the_untouched_export_passes_both_checks(export: tuple[Path, Checkpoint]) -> None:
    directory, checkpoint = export
    assert checkpoint.tree_size == 37
    assert _verify_complete_records(directory, checkpoint, None) == 37
    assert _verify_records_by_proof(directory, checkpoint, COMPLETE, None) == 37


@given(data=st.data())
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_single_changed_byte_of_the_line_files_fails_both_checks(
    export: tuple[Path, Checkpoint], scratch: Path, data: st.DataObject
) -> None:
    source, checkpoint = export
    name = data.draw(st.sampled_from(["events.jsonl", "proofs.jsonl"]))
    copy = scratch / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    content = bytearray((copy / name).read_bytes())
    at = data.draw(st.integers(0, len(content) - 1))
    content[at] = data.draw(st.sampled_from([b for b in TAMPER_ALPHABET if b != content[at]]))
    (copy / name).write_bytes(bytes(content))
    assert per_proof_refuses(copy, checkpoint)
    assert one_pass_refuses(copy, checkpoint)


def test_verify_names_the_first_damaged_line_even_when_one_pass_notices_it_later(
    export: tuple[Path, Checkpoint], scratch: Path
) -> None:
    source, _ = export
    copy = Path(shutil.copytree(source, scratch / "copy"))
    lines = (copy / "proofs.jsonl").read_bytes().split(b"\n")
    # Line 1's first hash is leaf 1's, a right sibling: one pass checks it at leaf 1.
    first = lines[0]
    at = first.index(b'["') + 2
    lines[0] = first[:at] + (b"1" if first[at : at + 1] == b"0" else b"0") + first[at + 1 :]
    (copy / "proofs.jsonl").write_bytes(b"\n".join(lines))
    with pytest.raises(VerificationError, match=r"events\.jsonl line 1 \(leaf_index 0.*"
                       r"inclusion proof fails \(proofs\.jsonl line 1\)"):  # fmt: skip
        verify_export(copy)


def test_proof_lines_in_another_json_layout_still_verify(
    export: tuple[Path, Checkpoint], scratch: Path
) -> None:
    source, checkpoint = export
    copy = Path(shutil.copytree(source, scratch / "copy"))
    lines = (copy / "proofs.jsonl").read_bytes().splitlines()
    spaced = [orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
              for line in lines[::3]]  # fmt: skip
    lines[::3] = spaced
    (copy / "proofs.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert _verify_complete_records(copy, checkpoint, None) == 37
    assert verify_export(copy).records == 37
