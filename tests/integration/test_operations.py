"""What docs/operations.md tells an operator to do works as written, on both backends.

Backup and restore (the database and the data dir), rotating the checkpoint signing key
and the master key; and the document lists every environment variable the settings
object reads.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest

from ledger.checkpoint import verify_signed_checkpoint
from services.bootstrap import bootstrap
from services.cli.main import main
from services.settings import Settings
from tests.support.settings_names import settings_variables

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
pytestmark = pytest.mark.timeout(180)


def cli(settings: Settings, *args: str) -> int:
    """Run one CLI command on the test's ledger."""
    common = ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir)]
    return main([*args, *common])


def write_and_checkpoint(settings: Settings, prefix: str, count: int) -> dict[str, object]:
    """Append `count` grants with evidence, sign a checkpoint of the head; return it."""
    services = bootstrap(settings)
    try:
        for n in range(count):
            services.ledger.grant(
                f"{prefix}-{n}",
                "ai-training",
                party="acme",
                evidence={"channel": "web", "email": f"{prefix}-{n}@example.org"},
            )
        services.log.catch_up()
        return dict(services.log.head_checkpoint().to_json())
    finally:
        services.close()


def save(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_operations_doc_lists_every_environment_variable_the_settings_read() -> None:
    table = DOC.read_text().split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", table, re.M))
    assert documented == settings_variables()


def backup(settings: Settings, folder: Path) -> None:
    """Back up as the doc says: the database (online) and the data dir."""
    folder.mkdir()
    url = settings.database_url
    if url.startswith("sqlite:///"):
        source = sqlite3.connect(url[len("sqlite:///") :])
        target = sqlite3.connect(folder / "ledger.db")
        with target:
            source.backup(target)
        source.close()
        target.close()
    else:
        base, _, query = url.partition("?schema=")
        subprocess.run(
            [
                "pg_dump",
                "--format=custom",
                f"--schema={query}",
                f"--file={folder / 'ledger.dump'}",
                base,
            ],
            check=True,
            timeout=120,
        )
    assert settings.data_dir is not None
    shutil.copytree(settings.data_dir, folder / "data")


def lose_and_restore(settings: Settings, folder: Path) -> None:
    """Destroy the ledger and its data dir, then restore both from `folder`."""
    url = settings.database_url
    assert settings.data_dir is not None
    shutil.rmtree(settings.data_dir)
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///") :])
        for leftover in db.parent.glob(db.name + "*"):
            leftover.unlink()
        shutil.copy(folder / "ledger.db", db)
    else:
        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        subprocess.run(
            ["pg_restore", "--exit-on-error", f"--dbname={base}", str(folder / "ledger.dump")],
            check=True,
            timeout=120,
        )
    shutil.copytree(folder / "data", settings.data_dir)


def test_a_restored_backup_verifies_against_the_checkpoints_signed_before_it(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = save(tmp_path / "first.json", write_and_checkpoint(settings, "early", 5))
    second = save(tmp_path / "second.json", write_and_checkpoint(settings, "late", 4))
    backup(settings, tmp_path / "backup")
    lose_and_restore(settings, tmp_path / "backup")

    assert cli(settings, "audit") == 0
    capsys.readouterr()
    assert cli(settings, "checkpoint", "--public-key") == 0
    public_key = tmp_path / "log.pub"
    public_key.write_text(capsys.readouterr().out)
    for earlier in (first, second):
        out = tmp_path / f"export-{earlier.stem}"
        assert cli(settings, "export", str(out), "--since-checkpoint", str(earlier)) == 0
        assert (
            main(
                [
                    "verify",
                    str(out),
                    "--public-key",
                    str(public_key),
                    "--since-checkpoint",
                    str(earlier),
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert cli(settings, "history", "early-0", "--json") == 0
    history = json.loads(capsys.readouterr().out)
    assert history["events"][0]["evidence"]["email"] == "early-0@example.org"


def note_key_ids(note: str) -> list[str]:
    """Return the key IDs (hex) of a signed note's signature lines."""
    lines = note.split("\n\n", 1)[1].splitlines()
    return [base64.b64decode(line.split(" ")[-1])[:4].hex() for line in lines]


def test_rotating_the_checkpoint_key_keeps_old_checkpoints_verifiable_and_names_the_key_in_notes(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_and_checkpoint(settings, "before", 3)
    capsys.readouterr()
    assert cli(settings, "rotate", "checkpoint-key", "--json") == 0
    rotation = json.loads(capsys.readouterr().out)
    assert rotation["old_public_key"] == old["public_key"]
    new = write_and_checkpoint(settings, "after", 2)
    assert new["public_key"] == rotation["new_public_key"] != old["public_key"]

    services = bootstrap(settings)
    try:
        notes = {cp.tree_size: cp.note for cp in services.log.iter_checkpoints()}
        stored = {cp.tree_size: cp.to_json() for cp in services.log.iter_checkpoints()}
    finally:
        services.close()
    assert note_key_ids(notes[int(str(old["tree_size"]))]) == [rotation["old_key_id"]]
    assert note_key_ids(notes[int(str(new["tree_size"]))]) == [rotation["new_key_id"]]
    verify_signed_checkpoint(stored[int(str(old["tree_size"]))], str(old["public_key"]))
    assert cli(settings, "audit") == 0  # trusts the retired key's checkpoints

    out, earlier = tmp_path / "export", save(tmp_path / "old.json", old)
    assert cli(settings, "export", str(out), "--since-checkpoint", str(earlier)) == 0
    new_pub, old_pub = tmp_path / "new.pub", tmp_path / "old.pub"
    new_pub.write_text(str(new["public_key"]))
    old_pub.write_text(str(old["public_key"]))
    verify = ["verify", str(out), "--public-key", str(new_pub), "--since-checkpoint", str(earlier)]
    assert main(verify) == 1  # the earlier checkpoint is not the new key's ...
    assert main([*verify, "--since-public-key", str(old_pub)]) == 0  # ... but the old key's


def test_rotating_the_master_key_rewraps_subject_keys_and_erased_subjects_stay_erased(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    write_and_checkpoint(settings, "kept", 2)
    write_and_checkpoint(settings, "gone", 1)
    assert cli(settings, "erase", "gone-0") == 0
    assert settings.data_dir is not None
    old_master = (settings.data_dir / "master.key").read_bytes()
    capsys.readouterr()

    assert cli(settings, "rotate", "master-key", "--json") == 0
    rotation = json.loads(capsys.readouterr().out)
    assert rotation["rewrapped"] == 2
    assert Path(rotation["retired_file"]).read_bytes() == old_master
    assert (settings.data_dir / "master.key").read_bytes() != old_master

    for subject, email in (("kept-0", "kept-0@example.org"), ("gone-0", None)):
        assert cli(settings, "history", subject, "--json") == 0
        events = json.loads(capsys.readouterr().out)["events"]
        grant = next(e for e in events if e["type"] == "ConsentGranted")
        assert (grant["evidence"] or {}).get("email") == email
    assert cli(settings, "audit") == 0
