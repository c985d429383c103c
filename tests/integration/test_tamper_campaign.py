"""A tamper campaign: one random byte of a random stored row, export line, proof or
checkpoint, 100 times each; every change is caught by `audit` or `verify`, naming the place.

The seeds are fixed, so a failure names a reproducible case (file, offset, old and new byte).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from ledger.verify import VerificationError, verify_export
from projections.audit import audit_ledger
from services.bootstrap import Services
from tests.integration.log_support import (
    TAMPER_ALPHABET,
    export_sqlite_ledger,
    populate,
    read_state,
    write_state,
)

CASES = 100
EXPORT_FILES = ["events.jsonl", "proofs.jsonl", "checkpoint.json", "checkpoint.note",
                "manifest.json"]  # fmt: skip
ALPHABET = TAMPER_ALPHABET


def another_byte(rng: random.Random, old: int) -> int:
    return rng.choice([b for b in ALPHABET if b != old])


@pytest.fixture(scope="module")
def ledger_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return export_sqlite_ledger(tmp_path_factory.mktemp("campaign"), subjects=5)


def test_every_random_byte_change_of_an_export_fails_verify_naming_the_file(
    ledger_export: tuple[Path, bytes], tmp_path: Path
) -> None:
    source, public_key = ledger_export
    verify_export(source, public_key=public_key)  # the untouched export verifies
    missed: list[str] = []
    for seed in range(CASES):
        rng = random.Random(seed)
        copy = Path(shutil.copytree(source, tmp_path / f"c{seed}"))
        name = rng.choice(EXPORT_FILES)
        data = bytearray((copy / name).read_bytes())
        at = rng.randrange(len(data))
        old = data[at]
        data[at] = another_byte(rng, old)
        (copy / name).write_bytes(bytes(data))
        case = f"seed {seed}: {name}[{at}] {bytes([old])!r}->{bytes([data[at]])!r}"
        try:
            verify_export(copy, public_key=public_key)
        except VerificationError as error:
            if name not in str(error):
                missed.append(f"{case}: the error does not name {name}: {error}")
        else:
            missed.append(f"{case}: verified")
        shutil.rmtree(copy)
    assert not missed, "\n".join(missed)


def test_every_random_byte_change_of_a_stored_row_fails_the_audit_at_its_position(
    services: Services,
) -> None:
    receipts = populate(services.ledger, subjects=4)
    services.log.catch_up()
    services.log.head_checkpoint()
    missed: list[str] = []
    for seed in range(CASES):
        rng = random.Random(seed)
        position = rng.choice(receipts).position
        original = read_state(services, position)
        data = bytearray(original)
        at = rng.randrange(len(data))
        data[at] = another_byte(rng, data[at])
        write_state(services, position, bytes(data))
        report = audit_ledger(services.log)
        case = f"seed {seed}: position {position} byte {at}"
        if report.ok or report.finding is None:
            missed.append(f"{case}: not caught")
        elif report.finding.position != position:
            missed.append(f"{case}: named position {report.finding.position}")
        write_state(services, position, original)
    assert audit_ledger(services.log).ok, "restoring every row must make the audit pass again"
    assert not missed, "\n".join(missed)
