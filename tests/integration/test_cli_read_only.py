"""A read-only command pointed at a ledger that does not exist says so and creates nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from services.cli.main import main

READS = [
    ["check", "artist-1", "ai-training"],
    ["history", "artist-1"],
    ["audit"],
    ["proof", "inclusion", "--position", "1"],
]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argv", READS, ids=lambda a: " ".join(a[:2]))
def test_a_read_of_a_missing_sqlite_ledger_exits_3_and_creates_nothing(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'ledger.db'}"
    code = main([*argv, "--database-url", url, "--data-dir", str(tmp_path / "keys")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1, err
    assert "no ledger at" in err[0]
    assert tree(tmp_path) == []


def test_filter_of_a_missing_ledger_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("artist-1,t1\n"))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    code = main(["filter", "ai-training", "--database-url", url])
    assert code == 3
    assert "no ledger at" in capsys.readouterr().err
    assert tree(tmp_path) == []


def test_a_read_of_an_existing_ledger_still_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert main(["grant", "artist-1", "ai-training", "--database-url", url]) == 0
    capsys.readouterr()
    assert main(["check", "artist-1", "ai-training", "--json", "--database-url", url]) == 0
    assert '"allowed":true' in capsys.readouterr().out.replace(" ", "")


@pytest.mark.postgres
def test_a_read_of_a_missing_postgres_schema_creates_no_schema(
    postgres_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = f"t_missing_{uuid.uuid4().hex[:10]}"
    base = postgres_server.split("?")[0]
    code = main(
        ["check", "a", "ai-training", "--database-url", f"{base}?schema={schema}",
         "--data-dir", str(tmp_path / "keys")]
    )  # fmt: skip
    assert code == 3
    assert "no ledger at schema" in capsys.readouterr().err
    with psycopg.connect(base) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", [schema]
        ).fetchone()
    assert found == (0,)
    assert not (tmp_path / "keys").exists()
