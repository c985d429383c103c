"""The data dir's key files are created private (0600) and refused once others may read them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.bootstrap import CHECKPOINT_KEY_FILE, bootstrap
from services.cli.main import main
from services.keystore import MASTER_KEY_FILE
from services.settings import Settings


def first_run(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", data_dir=data)).close()
    return data


def test_key_files_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    data = first_run(tmp_path)
    for name in (MASTER_KEY_FILE, CHECKPOINT_KEY_FILE):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("name", [MASTER_KEY_FILE, CHECKPOINT_KEY_FILE])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_may_read_is_refused_with_one_line(
    tmp_path: Path, name: str, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data = first_run(tmp_path)
    (data / name).chmod(mode)
    code = main(
        ["check", "a", "ai-training", "--database-url", f"sqlite:///{tmp_path / 'l.db'}",
         "--data-dir", str(data)]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f"{mode:04o}" in err[0]
    assert "chmod 600" in err[0]
    assert name in err[0]
