"""The layout rules the linters do not check: module length."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "projections", "services", "tests", "bench")
MAX_LINES = 400
REASON = "# long module: "
HEAD_LINES = 12  # the reason must be visible when the file is opened


def python_modules() -> list[Path]:
    """Return every Python module of the project's own packages."""
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def states_a_reason(lines: list[str]) -> bool:
    """Tell whether one of a module's first lines says why it is long."""
    return any(
        line.startswith(REASON) and line[len(REASON) :].strip() for line in lines[:HEAD_LINES]
    )


def test_the_layout_check_sees_the_project_modules() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in python_modules()}
    assert {"services/bootstrap.py", "ledger/vocabulary.py", "tests/conftest.py"} <= names


@pytest.mark.parametrize(
    ("lines", "ok"),
    [
        (["x = 1"] * 401, False),
        (["# long module: one table of test vectors", *["x = 1"] * 400], True),
        (['"""Docstring."""', "# long module: ", *["x = 1"] * 400], False),
    ],
    ids=["no-reason", "reason", "empty-reason"],
)
def test_a_long_module_needs_a_stated_reason(lines: list[str], ok: bool) -> None:
    assert states_a_reason(lines) is ok


def test_every_module_over_400_lines_says_why_at_its_top() -> None:
    unexplained = []
    for path in python_modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not states_a_reason(lines):
            unexplained.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not unexplained, (
        f"modules over {MAX_LINES} lines need a '{REASON}<reason>' line in their first "
        f"{HEAD_LINES} lines, or a split: " + ", ".join(unexplained)
    )
