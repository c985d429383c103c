"""Snapshots, snapshot filtering and datasets through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledger.checkpoint import SigningKey
from ledger.snapshot import DATA_FILE, MANIFEST_FILE, seal_manifest
from projections.snapshots.writer import file_sha256
from services.bootstrap import CHECKPOINT_KEY_FILE
from tests.integration.test_cli_ledger import Cli


@pytest.fixture
def cli(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(database_url, tmp_path / "data", capsys)


def seed(cli: Cli) -> dict[str, str]:
    """Terms defaulting ai-training to granted; ann and bob accept; bob refuses t9; cat opts in."""
    ids = {}
    for argv in (
        (
            "terms",
            "publish",
            "v1",
            "--effective-from",
            "2024-01-01",
            "--clause",
            "ai-training=granted",
        ),
        ("terms", "accept", "ann", "v1", "--at", "2024-02-01"),
        ("terms", "accept", "bob", "v1", "--at", "2024-02-01"),
    ):
        assert cli(*argv)[0] == 0
    ids["bob-t9"] = cli.json("revoke", "bob", "ai-training", "--content", "t9")["event_id"]
    ids["cat"] = cli.json("grant", "cat", "ai-training", "--party", "platform")["event_id"]
    return {k: str(v) for k, v in ids.items()}


def write_candidates(path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "subject": ["ann", "bob", "bob", "cat", "dan"],
                "content": ["t1", "t1", "t9", "t2", "t3"],
                "score": [1, 2, 3, 4, 5],
            }
        ),
        path,
    )


def reseal(directory: Path, key_file: Path, **changes: object) -> None:
    """Re-sign a snapshot's manifest (after changes) with the ledger's own key."""
    manifest = orjson.loads((directory / MANIFEST_FILE).read_bytes())
    manifest.update(changes)
    manifest["files"][0]["sha256"] = file_sha256(directory / DATA_FILE)
    sealed = seal_manifest(manifest, SigningKey.load(key_file))
    (directory / MANIFEST_FILE).write_bytes(orjson.dumps(sealed))


def test_snapshot_verifies_and_every_row_recomputes_from_a_verified_export(
    cli: Cli, tmp_path: Path
) -> None:
    seed(cli)
    manifest: Any = cli.json(
        "snapshot", "create", str(tmp_path / "snap"), "--purpose", "ai-training"
    )
    assert manifest["rows"] == {"total": 4, "catalogue": 3, "content": 1, "allowed": 3}
    assert manifest["question"]["party"] == "platform"
    assert manifest["position"] == cli.position()
    assert int(manifest["tree_size"]) >= 5
    rows = pq.read_table(tmp_path / "snap" / DATA_FILE).to_pylist()
    assert {(r["subject"], r["content"]): r["basis"] for r in rows} == {
        ("ann", None): "terms-default",
        ("bob", None): "terms-default",
        ("bob", "t9"): "explicit-revocation",
        ("cat", None): "explicit-grant",
    }
    _code, out, _ = cli("checkpoint", "--public-key")
    (tmp_path / "key.txt").write_text(out.strip().splitlines()[-1])
    cli("grant", "ann", "ai-training", "--content", "t5")  # after the snapshot
    assert cli("export", str(tmp_path / "export"))[0] == 0
    report = cli.json(
        "snapshot",
        "verify",
        str(tmp_path / "snap"),
        "--public-key",
        str(tmp_path / "key.txt"),
        "--export",
        str(tmp_path / "export"),
    )
    assert report["verified"] is True
    assert report["rows_recomputed"] == 4
    assert report["key_trusted"] is True


def test_altered_data_file_or_foreign_signature_is_refused_with_one_line(
    cli: Cli, tmp_path: Path
) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    other = tmp_path / "other.txt"
    other.write_text(SigningKey.generate().public_key_b64())
    code, _, err = cli("snapshot", "verify", str(snap), "--public-key", str(other))
    assert code == 1
    assert "another key" in err
    assert len(err.strip().splitlines()) == 1
    data = bytearray((snap / DATA_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (snap / DATA_FILE).write_bytes(bytes(data))
    code, _, err = cli("snapshot", "verify", str(snap))
    assert code == 1
    assert "was altered" in err
    code, out, err = cli("filter", "ai-training", "--snapshot", str(snap))
    assert (code, out) == (2, "")
    assert "was altered" in err
    assert len(err.strip().splitlines()) == 1


def test_tampered_manifest_breaks_its_signature(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    manifest = orjson.loads((snap / MANIFEST_FILE).read_bytes())
    manifest["question"]["party"] = "acme"
    (snap / MANIFEST_FILE).write_bytes(orjson.dumps(manifest))
    code, _, err = cli("snapshot", "verify", str(snap))
    assert code == 1
    assert "snapshot_id" in err or "signature" in err


def test_export_recomputation_names_the_first_row_that_differs(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    table = pq.read_table(snap / DATA_FILE)
    allowed = table["allowed"].to_pylist()
    flipped = next(i for i, r in enumerate(table.to_pylist()) if r["content"] == "t9")
    allowed[flipped] = True
    table = table.set_column(2, "allowed", pa.array(allowed))
    pq.write_table(table, snap / DATA_FILE)
    reseal(snap, tmp_path / "data" / CHECKPOINT_KEY_FILE)  # a signed but wrong snapshot
    assert cli("snapshot", "verify", str(snap))[0] == 0  # signature and digests hold
    cli("export", str(tmp_path / "export"))
    code, _, err = cli("snapshot", "verify", str(snap), "--export", str(tmp_path / "export"))
    assert code == 1
    assert f"row {flipped + 1} (subject 'bob', content 't9')" in err


def test_snapshot_of_an_unknown_purpose_is_refused(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    code, _, err = cli("snapshot", "create", str(tmp_path / "a"), "--purpose", "made-up")
    assert code == 2
    assert "made-up" in err
    assert not (tmp_path / "a").exists()
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    manifest = orjson.loads((snap / MANIFEST_FILE).read_bytes())
    reseal(
        snap,
        tmp_path / "data" / CHECKPOINT_KEY_FILE,
        question={**manifest["question"], "purpose": "made-up"},
    )
    code, _, err = cli("filter", "made-up", "--snapshot", str(snap))
    assert code == 2
    assert "unknown purpose" in err.lower() or "made-up" in err
    assert len(err.strip().splitlines()) == 1


def test_filter_with_a_snapshot_keeps_allowed_lines_and_parquet_rows_with_their_columns(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    monkeypatch.setattr(
        "sys.stdin", __import__("io").StringIO("subject,content\nann,t1\nbob,t9\nbob,t1\ndan,t3\n")
    )
    code, out, _ = cli("filter", "ai-training", "--snapshot", str(snap))
    assert (code, out) == (0, "ann,t1\nbob,t1\n")
    write_candidates(tmp_path / "cand.parquet")
    answer = cli.json(
        "filter",
        "ai-training",
        "--snapshot",
        str(snap),
        "--input",
        str(tmp_path / "cand.parquet"),
        "--output",
        str(tmp_path / "out.parquet"),
    )
    assert (answer["read"], answer["allowed"]) == (5, 3)
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
        {"subject": "ann", "content": "t1", "score": 1},
        {"subject": "bob", "content": "t1", "score": 2},
        {"subject": "cat", "content": "t2", "score": 4},
    ]
    code, _, err = cli("filter", "ai-generative-training", "--snapshot", str(snap))
    assert code == 2
    assert "answers purpose 'ai-training'" in err


@pytest.mark.parametrize("kind", ["missing-column", "binary-not-utf8", "string-not-utf8"])
def test_unreadable_candidates_get_a_clear_error_and_no_output_file(
    cli: Cli, tmp_path: Path, kind: str
) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    bad = tmp_path / "bad.parquet"
    good_rows = pa.array(["ann"] * 3, pa.string())
    if kind == "missing-column":
        table = pa.table({"subject": good_rows, "track": ["t1", "t2", "t3"]})
        want = "lack column(s) content"
    elif kind == "binary-not-utf8":
        table = pa.table({"subject": good_rows, "content": pa.array([b"t1", b"\xff\xfe", b"t3"])})
        want = "not UTF-8"
    else:
        data = b"t1\xff\xfet3"
        offsets = pa.array([0, 2, 4, 6], pa.int32()).buffers()[1]
        content = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(data)])
        table = pa.table({"subject": good_rows, "content": content})
        want = "not UTF-8"
    pq.write_table(table, bad)
    out = tmp_path / "out" / "allowed.parquet"
    out.parent.mkdir()
    code, _stdout, err = cli(
        "filter", "ai-training", "--snapshot", str(snap), "--input", str(bad), "--output", str(out)
    )
    assert code == 2
    assert want in err
    assert len(err.strip().splitlines()) == 1
    assert list(out.parent.iterdir()) == []


def test_dataset_impacts_name_each_revocation_void_and_erasure(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    grant = cli.json("grant", "ann", "ai-training", "--content", "t2")["event_id"]
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    items = tmp_path / "items.csv"
    items.write_text("subject,content\nann,t1\nann,t2\nbob,t1\ncat,t4\n")
    registered = cli.json(
        "datasets",
        "register",
        "train-1",
        "--snapshot",
        str(snap),
        "--model",
        "gen-1",
        "--model-version",
        "2025-06",
        "--items",
        str(items),
    )
    dataset: Any = registered["dataset"]
    assert dataset["items_count"] == 4
    assert dataset["model"] == "gen-1"
    assert len(str(dataset["items_sha256"])) == 64
    assert cli.json("datasets", "impacts", "train-1")["impacts"] == []
    void = cli.json("void", str(grant), "--reason", "entered in error")["event_id"]
    revoke = cli.json("revoke", "bob", "ai-training")["event_id"]
    erase = cli.json("erase", "cat")["event_id"]
    impacts: Any = cli.json("datasets", "impacts", "train-1")
    assert impacts["dataset"] == "train-1"
    assert impacts["position"] == cli.position()
    found = {(i["subject"], i["content"]): (i["basis"], i["event_id"]) for i in impacts["impacts"]}
    assert found == {
        ("bob", "t1"): ("explicit-revocation", revoke),
        ("cat", "t4"): ("erased", erase),
    }  # ann,t2 falls back to ann's terms default: still allowed
    assert ids["cat"] != erase
    report = cli.json("datasets", "report", "train-1")
    assert report["items"] == 4
    assert report["by_basis"] == {"explicit-grant": 2, "terms-default": 2}
    assert report["impacts_now"] == 2
    code, md, _ = cli("datasets", "report", "train-1", "--format", "md")
    assert code == 0
    assert "| explicit-grant | v1 | 1 |" in md
    assert void


def test_dataset_registration_refuses_denied_items_and_a_second_registration(
    cli: Cli, tmp_path: Path
) -> None:
    seed(cli)
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-training")
    items = tmp_path / "items.csv"
    items.write_text("bob,t9\n")
    code, _, err = cli("datasets", "register", "d", "--snapshot", str(snap), "--items", str(items))
    assert code == 2
    assert "bob,t9 is not allowed" in err
    assert cli("datasets", "impacts", "d")[0] == 3
    assert cli("datasets", "register", "d", "--snapshot", str(snap))[0] == 0
    code, _, err = cli("datasets", "register", "d", "--snapshot", str(snap))
    assert code == 4
    assert "registered already" in err


def test_dataset_void_of_the_deciding_grant_is_the_impact(cli: Cli, tmp_path: Path) -> None:
    grant = cli.json("grant", "eve", "ai-generative-training")["event_id"]
    snap = tmp_path / "snap"
    cli("snapshot", "create", str(snap), "--purpose", "ai-generative-training")
    cli("datasets", "register", "gen", "--snapshot", str(snap))
    void = cli.json("void", str(grant), "--reason", "wrong artist")["event_id"]
    impacts = cli.json("datasets", "impacts", "gen")["impacts"]
    assert impacts == [
        {"subject": "eve", "content": None, "basis": "opt-in-required", "event_id": void}
    ]
    assert json.loads(json.dumps(impacts)) == impacts
