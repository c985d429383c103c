"""`audit` re-hashes the stored ledger and names the first altered, removed or moved position."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from ledger.application import Receipt
from projections.audit import NoCheckpointError, audit_ledger
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.integration.log_support import (
    delete_row,
    flip_byte,
    populate,
    raw_store,
    read_state,
    swap_rows,
    write_state,
)


def checkpointed(services: Services) -> list[Receipt]:
    """Record a small history, log it and sign a checkpoint of all of it."""
    receipts = populate(services.ledger)
    services.log.catch_up()
    services.log.head_checkpoint()
    return receipts


def test_an_untouched_ledger_passes_the_audit(services: Services) -> None:
    checkpointed(services)
    services.ledger.grant("artist-1", "ai-training")  # after the checkpoint: not audited
    report = audit_ledger(services.log)
    assert report.ok
    assert report.tables_match
    assert report.checked == 10
    assert report.head_position == services.ledger.ledger_position()


def test_one_byte_changed_in_a_stored_event_is_named_by_its_position(services: Services) -> None:
    receipts = checkpointed(services)
    target = receipts[5].position
    flip_byte(services, target, b'"subject":"')  # artist-1 becomes `rtist-1
    report = audit_ledger(services.log)
    assert not report.ok
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", target)
    assert "re-hashes to" in report.finding.detail


def test_a_deleted_stored_event_is_named_as_removed(services: Services) -> None:
    receipts = checkpointed(services)
    target = receipts[4].position
    delete_row(services, target)
    report = audit_ledger(services.log)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("removed", target)


def test_two_swapped_stored_events_are_named_as_reordered(services: Services) -> None:
    receipts = checkpointed(services)
    first, second = receipts[3].position, receipts[7].position
    swap_rows(services, first, second)
    report = audit_ledger(services.log)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("reordered", first)
    assert f"committed at position {second}" in report.finding.detail


def test_the_last_event_deleted_is_named_as_removed(services: Services) -> None:
    receipts = checkpointed(services)
    delete_row(services, receipts[-1].position)
    report = audit_ledger(services.log)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("removed", receipts[-1].position)


def upper_first_hex_letter_of_event_id(services: Services, position: int) -> None:
    """Change one byte of the stored event id so that it still decodes to the same UUID."""
    state = read_state(services, position)
    at = state.index(b'"uuid_hex","_data_":"') + len(b'"uuid_hex","_data_":"')
    i = next(i for i in range(at, at + 32) if state[i : i + 1] in b"abcdef")
    write_state(services, position, state[:i] + state[i : i + 1].upper() + state[i + 1 :])


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (upper_first_hex_letter_of_event_id, "byte-level"),
        (lambda s, p: flip_byte(s, p, b"{"), "does not decode"),  # '{"' becomes '{#'
        (lambda s, p: flip_byte(s, p, b'"datetime_iso","_data_":"', 3), "re-hashes to"),
    ],
    ids=["same-meaning", "undecodable", "recorded-at-year"],
)
def test_every_kind_of_byte_change_is_caught_at_its_position(
    sqlite_services: Services, change: Callable[[Services, int], None], why: str
) -> None:
    receipts = checkpointed(sqlite_services)
    target = receipts[2].position
    change(sqlite_services, target)
    report = audit_ledger(sqlite_services.log)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", target)
    assert why in report.finding.detail


def test_with_the_log_tables_damaged_too_the_first_alteration_is_bounded_by_checkpoints(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    receipts = populate(services.ledger, subjects=1)  # 4 events
    for n in range(2):  # then 4 more twice: checkpoints of 4, 8 and 12 leaves
        services.log.catch_up()
        services.log.head_checkpoint()
        receipts += [services.ledger.grant(f"late-{n}-{i}", "ai-training") for i in range(4)]
    services.log.catch_up()
    services.log.head_checkpoint()
    assert [cp.tree_size for cp in services.log.iter_checkpoints()] == [4, 8, 12]
    target = receipts[5].position  # leaf 5: between the checkpoints of 4 and 8 leaves
    flip_byte(services, target, b'"subject":"')
    with raw_store(services) as (conn, _, _):  # the attacker rewrites the leaf row too
        conn.execute("UPDATE merkle_leaves SET leaf_hash = zeroblob(32) WHERE leaf_index = 5")
    report = audit_ledger(services.log)
    assert not report.ok
    assert not report.tables_match
    assert report.suspect_leaves == (4, 7)
    assert report.suspect_positions is not None
    assert report.suspect_positions[0] <= target <= report.suspect_positions[1]


def test_auditing_without_a_checkpoint_is_refused(services: Services) -> None:
    with pytest.raises(NoCheckpointError):
        audit_ledger(services.log)


@pytest.fixture
def sqlite_services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    """Yield services on SQLite only: the byte-level cases need not run on both backends."""
    wired = bootstrap(Settings(database_url=sqlite_url, data_dir=tmp_path / "data"))
    yield wired
    wired.close()


def test_cli_audit_exits_1_naming_the_position_and_proofs_still_answer(
    sqlite_services: Services, tmp_path: Path
) -> None:
    receipts = checkpointed(sqlite_services)
    settings = sqlite_services.settings
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_LOG_FORMAT": "json",
    }
    cli = str(Path(sys.executable).parent / "consent-ledger")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=60)

    clean = run("audit")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("audit ok: the ledger's first 10 events match")
    proof = run("proof", "inclusion", "--position", str(receipts[3].position), "--json")
    assert proof.returncode == 0, proof.stderr
    assert orjson.loads(proof.stdout)["leaf_index"] == 3
    flip_byte(sqlite_services, receipts[6].position, b'"subject":"')
    tampered = run("audit", "--json")
    assert tampered.returncode == 1
    finding = orjson.loads(tampered.stdout)["finding"]
    assert (finding["kind"], finding["position"]) == ("altered", receipts[6].position)
    text = run("audit")
    assert text.stdout.startswith(f"audit FAILED: position {receipts[6].position} altered")
