"""`consent-ledger check`, `filter` and `project` answer from the read models.

The CLI is one-shot: `check` and `filter` catch the read models up to the ledger head
before answering, so they reflect the caller's own writes without a running worker.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import orjson
import pytest

from services.cli.main import main
from services.cli.projections import read_pairs
from services.settings import Settings

Run = Callable[..., tuple[int, list[str], str]]


@pytest.fixture
def cli(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """Return `run(*argv, stdin="") -> (exit code, stdout lines, stderr)` on the test ledger."""

    def run(*argv: str, stdin: str = "") -> tuple[int, list[str], str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(
            [
                *argv,
                "--database-url",
                settings.database_url,
                "--data-dir",
                str(settings.data_dir),
            ]
        )
        out, err = capsys.readouterr()
        return code, out.splitlines(), err

    return run


def test_check_reflects_the_write_just_made_without_a_worker(cli: Run) -> None:
    run = cli
    code, out, _ = run("grant", "ann", "ai-generative-training", "--content", "t1", "--json")
    receipt = orjson.loads(out[0])
    code, out, _ = run("check", "ann", "ai-generative-training", "--content", "t1", "--json")
    answer = orjson.loads(out[0])
    assert code == 0
    assert answer["allowed"] is True
    assert answer["basis"] == "explicit-grant"
    assert answer["event_ids"] == [receipt["event_id"]]
    assert answer["position"] == receipt["position"]
    code, out, _ = run(
        "check", "ann", "ai-generative-training", "--content", "t1", "--json",
        "--min-position", str(receipt["position"]),
    )  # fmt: skip
    assert orjson.loads(out[0]) == answer


def test_filter_prints_the_allowed_lines_in_input_order(cli: Run) -> None:
    run = cli
    run("terms", "publish", "v1", "--effective-from", "2024-01-01", "--clause",
        "ai-training=granted")  # fmt: skip
    run("terms", "accept", "ann", "v1", "--at", "2024-02-01")
    run("revoke", "ann", "ai-training", "--content", "t2")
    run("grant", "bob", "ai-training", "--party", "*")
    stdin = "subject,content\nann,t1\n\nann,t2\r\nbob,t9\n cat , t1 \nann,t3\n"
    code, out, err = run("filter", "ai-training", stdin=stdin)
    assert (code, out, err) == (0, ["ann,t1", "ann,t3"], "")
    code, out, _ = run("filter", "ai-training", "--party", "acme", stdin=stdin)
    assert out == ["bob,t9"]
    code, out, _ = run("filter", "ai-training", "--json", "--at", "2024-01-15", stdin=stdin)
    assert out == []  # before the acceptance took effect


def test_filter_refuses_a_malformed_line_with_its_number(cli: Run) -> None:
    run = cli
    run("grant", "ann", "ai-training")  # a read of a ledger that does not exist is exit 3
    code, _, err = run("filter", "ai-training", stdin="ann,t1\nno comma here\n")
    assert code == 2
    assert err.strip() == (
        "consent-ledger: error: stdin line 2: want subject,content, got 'no comma here'"
    )
    code, _, err = run("filter", "ai-training", stdin="ann,t 1\n")
    assert code == 2
    assert err.startswith("consent-ledger: error: stdin line 1: content 't 1' must be 1-256")


def test_project_once_reports_the_position_and_the_head(cli: Run) -> None:
    run = cli
    run("grant", "ann", "ai-generative-training")
    run("grant", "bob", "ai-generative-training")
    code, out, _ = run("project", "--once", "--json")
    assert code == 0
    assert orjson.loads(out[0]) == {"position": 2, "head": 2, "lag": 0, "running": False}
    code, out, _ = run("project", "--rebuild", "--once")
    assert out == ["read models at position 2 (ledger head 2)"]


def test_reading_pairs_skips_a_header_and_blank_lines_only() -> None:
    lines = ["subject,content", "", "a,b", "subject,content", "  c , d  "]
    assert list(read_pairs(lines)) == [("a", "b"), ("subject", "content"), ("c", "d")]
