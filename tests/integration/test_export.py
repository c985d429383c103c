# long module: the tamper table and the verifier cases share their fixtures
"""The audit export verifies with nothing but its files and the public key; tampering fails."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoint import (
    Checkpoint,
    SigningKey,
    note_verifier_key,
    parse_timestamp,
    sign_checkpoint,
)
from ledger.errors import InvalidInputError
from ledger.merkle import hash_children, hash_leaf
from ledger.verify import ExportFilter, VerificationError, parse_public_key, verify_export
from projections.export import ExportMismatchError, export_ledger
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.integration.log_support import populate


@dataclass(frozen=True)
class Exported:
    """A complete export of a small ledger, and the log's public key."""

    directory: Path
    public_key: bytes


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Export a 13-event ledger once (SQLite): file tampering does not depend on the backend."""
    base = tmp_path_factory.mktemp("exported")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{base / 'ledger.db'}", data_dir=base / "data")
    )
    try:
        populate(services.ledger, subjects=4)
        services.log.catch_up()
        export_ledger(services.log, base / "out")
        return Exported(base / "out", services.log.key.public_key_raw())
    finally:
        services.close()


@pytest.fixture
def copy(exported: Exported, tmp_path: Path) -> Path:
    """Return a private copy of the export, for a test to tamper with."""
    return Path(shutil.copytree(exported.directory, tmp_path / "copy"))


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(lines(path))))


def rewrite_both(folder: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Make one change to the records and to their proofs alike."""
    rewrite(folder / "events.jsonl", change)
    rewrite(folder / "proofs.jsonl", change)


def edit_json(path: Path, **fields: object) -> None:
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), **fields}))


def test_a_complete_export_verifies_with_the_public_key(exported: Exported) -> None:
    report = verify_export(exported.directory, public_key=exported.public_key)
    assert report.records == report.checkpoint.tree_size == 13
    assert report.filter.complete
    assert report.key_trusted
    assert report.note_checked
    records = [orjson.loads(line) for line in lines(exported.directory / "events.jsonl")]
    assert [r["leaf_index"] for r in records] == list(range(13))
    assert all(
        "203.0.113" not in line.decode() for line in lines(exported.directory / "events.jsonl")
    )
    assert not (exported.directory / "evidence.jsonl").exists()


def swap(a: int, b: int) -> Callable[[list[bytes]], list[bytes]]:
    def change(rows: list[bytes]) -> list[bytes]:
        rows[a], rows[b] = rows[b], rows[a]
        return rows

    return change


def drop(index: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda rows: rows[:index] + rows[index + 1 :]


def edit_subject(rows: list[bytes]) -> list[bytes]:
    rows[3] = rows[3].replace(b'"artist-0"', b'"artist-7"')
    return rows


def edit_first_hash_of_line(index: int) -> Callable[[list[bytes]], list[bytes]]:
    def change(rows: list[bytes]) -> list[bytes]:
        proof = orjson.loads(rows[index])
        first = proof["audit_path"][0]
        proof["audit_path"][0] = ("1" if first[0] == "0" else "0") + first[1:]
        rows[index] = orjson.dumps(proof) + b"\n"
        return rows

    return change


def forge_signature(directory: Path) -> None:
    signature = bytearray(
        base64.b64decode(orjson.loads((directory / "checkpoint.json").read_bytes())["signature"])
    )
    signature[0] ^= 1
    edit_json(directory / "checkpoint.json", signature=base64.b64encode(signature).decode())


def resign_with_another_key(directory: Path) -> None:
    """Re-sign the same tree head with a key the auditor does not trust."""
    obj = orjson.loads((directory / "checkpoint.json").read_bytes())
    checkpoint = Checkpoint(
        obj["log_id"],
        obj["tree_size"],
        bytes.fromhex(obj["root_hash"]),
        parse_timestamp(obj["timestamp"]),
    )
    (directory / "checkpoint.json").write_bytes(
        orjson.dumps(sign_checkpoint(checkpoint, SigningKey.generate()).to_json())
    )


def claim_filtered_and_drop_a_line(directory: Path) -> None:
    manifest = orjson.loads((directory / "manifest.json").read_bytes())
    manifest["filter"]["subjects"] = ["artist-1"]
    manifest["complete"] = False
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest))
    rewrite(directory / "events.jsonl", drop(2))
    rewrite(directory / "proofs.jsonl", drop(2))


TAMPERINGS: dict[str, tuple[Callable[[Path], object], str]] = {
    "edited-line": (
        lambda d: rewrite(d / "events.jsonl", edit_subject),
        "events.jsonl line 4 (leaf_index 3, event_id",
    ),
    "reformatted-line": (
        lambda d: rewrite(
            d / "events.jsonl", lambda r: [*r[:5], r[5].replace(b",", b", ", 1), *r[6:]]
        ),
        "events.jsonl line 6: the line is not the RFC 8785 (JCS) form",
    ),
    "repeated-key": (
        lambda d: rewrite(
            d / "events.jsonl", lambda r: [*r[:1], b'{"subject":"x",' + r[1][1:], *r[2:]]
        ),
        "events.jsonl line 2: the line is not the RFC 8785",
    ),
    "dropped-line": (
        lambda d: rewrite_both(d, drop(6)),
        "got leaf_index 7, want 6",
    ),
    "dropped-record-only": (
        lambda d: rewrite(d / "events.jsonl", drop(6)),
        "proofs.jsonl line 7 is for leaf_index 6, want 7",
    ),
    "dropped-last-line": (
        lambda d: rewrite_both(d, drop(12)),
        "got 12 records (leaves 0 … 11), want 13",
    ),
    "reordered-lines": (
        lambda d: rewrite_both(d, swap(4, 5)),
        "events.jsonl line 5 (leaf_index 5",
    ),
    "reordered-records-only": (
        lambda d: rewrite(d / "events.jsonl", swap(4, 5)),
        "proofs.jsonl line 5 is for leaf_index 4, want 5",
    ),
    "edited-proof": (
        lambda d: rewrite(d / "proofs.jsonl", edit_first_hash_of_line(8)),
        "events.jsonl line 9 (leaf_index 8, event_id",
    ),
    "forged-signature": (forge_signature, "checkpoint.json: checkpoint signature"),
    "edited-root": (
        lambda d: edit_json(d / "checkpoint.json", root_hash="00" * 32),
        "checkpoint.json: checkpoint signature",
    ),
    "another-key": (resign_with_another_key, "checkpoint.json: checkpoint public_key"),
    "manifest-claims-a-filter": (claim_filtered_and_drop_a_line, "manifest.json signature"),
    "edited-note": (
        lambda d: (d / "checkpoint.note").write_text(
            (d / "checkpoint.note").read_text().replace("\n13\n", "\n12\n")
        ),
        "checkpoint.note",
    ),
    "missing-proofs": (lambda d: (d / "proofs.jsonl").unlink(), "proofs.jsonl: missing"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_tampered_export_fails_verify_naming_the_first_bad_item(
    copy: Path, exported: Exported, name: str
) -> None:
    tamper, message = TAMPERINGS[name]
    tamper(copy)
    with pytest.raises(VerificationError) as caught:
        verify_export(copy, public_key=exported.public_key)
    assert message in caught.value.detail


def test_a_wrong_public_key_fails_verify(exported: Exported) -> None:
    with pytest.raises(VerificationError, match=r"public_key: got .*, want .*trusted"):
        verify_export(exported.directory, public_key=SigningKey.generate().public_key_raw())


def test_an_erased_subjects_records_and_proofs_survive_erasure(
    services: Services, tmp_path: Path
) -> None:
    populate(services.ledger)
    services.log.catch_up()
    before = export_ledger(services.log, tmp_path / "before", evidence=True)
    services.ledger.erase("artist-1")
    services.log.catch_up()
    after = export_ledger(services.log, tmp_path / "after", evidence=True)
    key = services.log.key.public_key_raw()
    assert verify_export(tmp_path / "before", public_key=key).records == 10
    assert verify_export(tmp_path / "after", public_key=key).records == 11
    assert after.checkpoint.tree_size == before.checkpoint.tree_size + 1

    def subject_lines(directory: Path) -> list[bytes]:
        return [
            line
            for line in lines(directory / "events.jsonl")
            if orjson.loads(line)["subject"] == "artist-1"
            and orjson.loads(line)["type"] != "SubjectErased"
        ]

    assert subject_lines(tmp_path / "before") == subject_lines(tmp_path / "after")
    assert len(subject_lines(tmp_path / "before")) == 3

    def evidence_of(directory: Path) -> list[dict[str, object]]:
        rows = [orjson.loads(line) for line in lines(directory / "evidence.jsonl")]
        return [row["evidence"] for row in rows if row["subject"] == "artist-1"]

    assert evidence_of(tmp_path / "before")[0]["email"] == "artist1@example.com"
    assert evidence_of(tmp_path / "after")[0] == {
        "channel": "web",
        "method": "settings-toggle",
        "personal_data": {"erased": True},
    }


def test_a_subject_export_verifies_against_the_whole_trees_checkpoint(
    services: Services, tmp_path: Path
) -> None:
    populate(services.ledger, subjects=4)
    services.log.catch_up()
    summary = export_ledger(services.log, tmp_path / "one", ExportFilter(subjects=("artist-2",)))
    report = verify_export(tmp_path / "one", public_key=services.log.key.public_key_raw())
    assert report.checkpoint.tree_size == 13
    assert report.records == summary.records == 4  # the terms publication and 3 events
    records = [orjson.loads(line) for line in lines(tmp_path / "one" / "events.jsonl")]
    assert {r["subject"] for r in records} == {None, "artist-2"}
    assert not report.filter.complete


def test_a_time_window_export_holds_exactly_the_events_recorded_in_it(
    sqlite_services: Services, tmp_path: Path
) -> None:
    receipts = populate(sqlite_services.ledger, subjects=4)
    sqlite_services.log.catch_up()
    window = ExportFilter(None, receipts[4].recorded_at, receipts[9].recorded_at)
    export_ledger(sqlite_services.log, tmp_path / "window", window)
    report = verify_export(tmp_path / "window", public_key=sqlite_services.log.key.public_key_raw())
    records = [orjson.loads(line) for line in lines(tmp_path / "window" / "events.jsonl")]
    assert [r["position"] for r in records] == [r.position for r in receipts[4:9]]
    assert report.records == 5


def test_an_export_proves_it_extends_an_earlier_checkpoint(
    sqlite_services: Services, tmp_path: Path
) -> None:
    log = sqlite_services.log
    populate(sqlite_services.ledger, subjects=1)
    log.catch_up()
    export_ledger(log, tmp_path / "first")
    earlier = orjson.loads((tmp_path / "first" / "checkpoint.json").read_bytes())
    populate_more = [sqlite_services.ledger.grant(f"later-{i}", "ai-training") for i in range(5)]
    assert populate_more
    log.catch_up()
    export_ledger(log, tmp_path / "second", since_checkpoint=earlier)
    report = verify_export(
        tmp_path / "second", public_key=log.key.public_key_raw(), since_checkpoint=earlier
    )
    assert report.consistent_from == 4
    # A checkpoint of another history at that size, signed by the same key: a fork.
    forked = sign_checkpoint(
        Checkpoint(log.log_id, 4, bytes(32), parse_timestamp(earlier["timestamp"])), log.key
    ).to_json()
    with pytest.raises(VerificationError, match=r"consistency\.json first_root"):
        verify_export(
            tmp_path / "second", public_key=log.key.public_key_raw(), since_checkpoint=forked
        )
    with pytest.raises(ExportMismatchError, match="forked"):
        export_ledger(log, tmp_path / "third", since_checkpoint=forked)
    assert not (tmp_path / "third").exists()


def test_an_empty_ledger_exports_an_empty_tree_that_verifies(
    sqlite_services: Services, tmp_path: Path
) -> None:
    export_ledger(sqlite_services.log, tmp_path / "empty")
    report = verify_export(tmp_path / "empty", public_key=sqlite_services.log.key.public_key_raw())
    assert (report.records, report.checkpoint.tree_size) == (0, 0)


def test_export_refuses_a_non_empty_directory_and_writes_nothing(
    sqlite_services: Services, tmp_path: Path
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty"):
        export_ledger(sqlite_services.log, tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    now = sqlite_services.ledger.clock.now()
    with pytest.raises(InvalidInputError, match="is not before --to"):
        export_ledger(sqlite_services.log, tmp_path / "window", ExportFilter(None, now, now))
    assert not (tmp_path / "window").exists()


def test_cli_export_then_verify_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "LEDGER_DATA_DIR": str(tmp_path / "data"),
        "LEDGER_LOG_FORMAT": "json",
    }
    cli = str(Path(sys.executable).parent / "consent-ledger")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=60)

    assert run("demo").returncode == 0
    key = run("checkpoint", "--public-key")
    (tmp_path / "log.pub").write_text(key.stdout)
    exported = run("export", str(tmp_path / "out"), "--json")
    assert exported.returncode == 0, exported.stderr
    summary = orjson.loads(exported.stdout)
    assert summary["complete"]
    assert summary["records"] == summary["tree_size"] > 0
    verified = run("verify", str(tmp_path / "out"), "--public-key", str(tmp_path / "log.pub"))
    assert verified.returncode == 0, verified.stderr
    assert f"verified {summary['records']} records" in verified.stdout
    rewrite(tmp_path / "out" / "events.jsonl", drop(1))
    rewrite(tmp_path / "out" / "proofs.jsonl", drop(1))
    failed = run("verify", str(tmp_path / "out"), "--public-key", str(tmp_path / "log.pub"))
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        "consent-ledger: verify FAILED: events.jsonl line 2 (leaf_index 2"
    )


@pytest.fixture
def sqlite_services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    """Yield services on SQLite only, for cases that do not depend on the backend."""
    wired = bootstrap(Settings(database_url=sqlite_url, data_dir=tmp_path / "data"))
    yield wired
    wired.close()


DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "audit-export-3"


def test_the_documented_worked_example_verifies_with_its_public_key() -> None:
    key = parse_public_key((DOCS / "examples" / "audit-export-3.pub").read_text())
    report = verify_export(EXAMPLE, public_key=key)
    assert (report.records, report.checkpoint.tree_size) == (3, 3)


def test_the_worked_examples_hashes_in_the_docs_are_those_of_the_files() -> None:
    text = (DOCS / "audit-export.md").read_text()
    leaves = [hash_leaf(line) for line in (EXAMPLE / "events.jsonl").read_bytes().splitlines()]
    h01 = hash_children(leaves[0], leaves[1])
    root = hash_children(h01, leaves[2])
    for name, value in [("h0", leaves[0]), ("h1", leaves[1]), ("h2", leaves[2])]:
        assert f"{name} = {value.hex()}" in text
    assert f"= {h01.hex()}" in text
    assert f"= {root.hex()}" in text
    assert orjson.loads((EXAMPLE / "checkpoint.json").read_bytes())["root_hash"] == root.hex()


def test_the_reference_verifier_in_the_docs_accepts_the_example_and_rejects_tampering(
    tmp_path: Path,
) -> None:
    text = (DOCS / "audit-export.md").read_text()
    start = text.index("# audit-export reference verifier")
    script = tmp_path / "verify.py"
    script.write_text(text[start : text.index("```", start)])
    key = (DOCS / "examples" / "audit-export-3.pub").read_text().strip()

    def run(directory: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), str(directory), key],
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = run(EXAMPLE)
    assert (good.returncode, good.stdout) == (0, "OK\n"), good.stderr
    tampered = Path(shutil.copytree(EXAMPLE, tmp_path / "tampered"))
    rewrite(tampered / "events.jsonl", lambda rows: [rows[0], rows[2]])
    rewrite(tampered / "proofs.jsonl", lambda rows: [rows[0], rows[2]])
    bad = run(tampered)
    assert bad.returncode == 1
    assert "FAILED: line 2: leaf_index 2 after 0" in bad.stderr


def test_the_public_key_is_read_in_base64_pem_or_note_verifier_form() -> None:
    key = SigningKey.generate()
    raw = key.public_key_raw()
    pem = (
        Ed25519PublicKey.from_public_bytes(raw)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for text in (key.public_key_b64() + "\n", pem, note_verifier_key("example.org/log", raw)):
        assert parse_public_key(text) == raw
    forged_id = note_verifier_key("a", raw).replace("a+", "b+", 1)
    for bad in ("not a key", "AAAA", forged_id):
        with pytest.raises(VerificationError):
            parse_public_key(bad)
