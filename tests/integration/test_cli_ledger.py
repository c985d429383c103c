"""The CLI's ledger verbs end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.bootstrap import bootstrap
from services.cli.main import main
from services.settings import Settings


class Cli:
    """Run `consent-ledger` in-process against one database; capture its output."""

    def __init__(self, url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.data_dir = data_dir
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*argv, "--database-url", self.url, "--data-dir", str(self.data_dir)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> dict[str, object]:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        result: dict[str, object] = json.loads(out)
        return result

    def position(self) -> int:
        services = bootstrap(Settings(database_url=self.url, data_dir=self.data_dir))
        try:
            return services.ledger.ledger_position()
        finally:
            services.close()


@pytest.fixture
def cli(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(database_url, tmp_path / "data", capsys)


def test_write_prints_event_id_and_json_receipt(cli: Cli) -> None:
    code, out, _ = cli("grant", "artist-1", "ai-training")
    assert code == 0
    assert len(out.strip()) == 36
    receipt = cli.json("grant", "artist-1", "data-mining", "--party", "aurora-labs")
    assert set(receipt) == {"event_id", "position", "recorded_at"}
    assert str(receipt["recorded_at"]).endswith("Z")


def test_check_follows_terms_grants_and_revocations(cli: Cli) -> None:
    cli(
        "terms",
        "publish",
        "2024-02",
        "--effective-from",
        "2024-02-07",
        "--clause",
        "ai-training=granted",
        "data-mining=denied",
    )
    acceptance = cli.json("terms", "accept", "artist-1", "2024-02", "--at", "2024-02-10")
    answer = cli.json("check", "artist-1", "ai-training", "--at", "2024-03-01")
    assert answer["allowed"] is True
    assert answer["basis"] == "terms-default"
    assert answer["event_ids"] == [acceptance["event_id"]]
    assert answer["terms_version"] == "2024-02"
    assert answer["position"] == acceptance["position"]

    revocation = cli.json(
        "revoke",
        "artist-1",
        "ai-training",
        "--content",
        "t1",
        "t2",
        "--content",
        "t3",
        "--at",
        "2024-04-01",
        "--reason",
        "pulled",
    )
    for track in ("t1", "t3"):
        denied = cli.json("check", "artist-1", "ai-training", "--content", track)
        assert denied["basis"] == "explicit-revocation"
        assert denied["event_ids"] == [revocation["event_id"]]
    assert cli.json("check", "artist-1", "ai-training", "--content", "t4")["allowed"] is True


def test_check_as_known_before_a_backfill_ignores_it(cli: Cli) -> None:
    first = cli.json("grant", "artist-2", "ai-generative-training", "--aspect", "voice")
    cli.json("grant", "artist-2", "ai-generative-training", "--at", "2023-01-01")
    now_view = cli.json("check", "artist-2", "ai-generative-training", "--at", "2024-01-01")
    then_view = cli.json(
        "check",
        "artist-2",
        "ai-generative-training",
        "--at",
        "2024-01-01",
        "--known-at",
        str(first["recorded_at"]),
    )
    assert (now_view["allowed"], then_view["allowed"]) == (True, False)
    assert then_view["position"] == first["position"]


def test_void_and_erase_change_the_answer_and_history_shows_them(cli: Cli) -> None:
    grant = cli.json(
        "grant",
        "artist-3",
        "ai-training",
        "--channel",
        "web",
        "--method",
        "toggle",
        "--evidence",
        "email=a3@example.org",
    )
    void = cli.json("void", str(grant["event_id"]), "--reason", "wrong artist")
    assert cli.json("check", "artist-3", "ai-training")["basis"] == "no-terms-accepted"
    history = cli.json("history", "artist-3")
    events = history["events"]
    assert isinstance(events, list)
    assert [e["type"] for e in events] == ["ConsentGranted", "EventVoided"]
    assert events[0]["voided_by"] == void["event_id"]
    assert events[0]["evidence"]["email"] == "a3@example.org"

    cli.json("erase", "artist-3")
    assert cli.json("check", "artist-3", "ai-training")["basis"] == "erased"
    evidence = cli.json("history", "artist-3")["events"][0]["evidence"]  # type: ignore[index]
    assert "email" not in evidence
    assert evidence["personal_data"] == {"erased": True}
    assert evidence["channel"] == "web"


BAD_INPUTS = [
    (["grant", "a", "ai-trainin"], "unknown purpose"),
    (["grant", "a", "ai-training", "--aspect", "smell"], "unknown aspect"),
    (["grant", "a", "ai-training", "--party", "Bad Party"], "party"),
    (["grant", "a", "ai-training", "--at", "2024-01-01T10:00"], "no zone"),
    (["grant", "a", "ai-training", "--at", "yesterday"], "ISO 8601"),
    (["grant", "a", "ai-training", "--at", "2024-01-01", "--expires", "2023-01-01"], "not after"),
    (["grant", "a", "ai-training", "--at", "2024-01-01", "--expires", "2024-01-01"], "not after"),
    (["terms", "accept", "a", "never-published"], "not been published"),
    (
        [
            "terms",
            "publish",
            "v9",
            "--effective-from",
            "2025-01-01",
            "--clause",
            "ai-generative-training=granted",
        ],
        "opt-in",
    ),
    (
        [
            "terms",
            "publish",
            "v9",
            "--effective-from",
            "2025-01-01",
            "--clause",
            "ai-training=maybe",
        ],
        "granted' or 'denied",
    ),
    (["void", "00000000-0000-4000-8000-000000000000", "--reason", "x"], "no ledger event"),
    (["void", "not-a-uuid", "--reason", "x"], "not a UUID"),
    (["check", "a", "ai-training", "--known-at", "2024-13-01"], "date"),
    (["revoke", "a", "ai-training", "--content"], "expected at least one"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS, ids=lambda v: str(v)[:40])
def test_refused_input_prints_one_line_exits_non_zero_and_writes_nothing(
    cli: Cli, argv: list[str], message: str
) -> None:
    cli(
        "terms",
        "publish",
        "v1",
        "--effective-from",
        "2024-01-01",
        "--clause",
        "ai-training=granted",
    )
    before = cli.position()
    code, out, err = cli(*argv)
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert cli.position() == before


def test_conflicts_exit_four_and_write_nothing(cli: Cli) -> None:
    cli("terms", "publish", "v1", "--effective-from", "2024-01-01")
    grant = cli.json("grant", "a", "ai-training")
    cli.json("void", str(grant["event_id"]), "--reason", "mistake")
    cli.json("erase", "b")
    acceptance_of_b = ["terms", "accept", "b", "v1"]
    before = cli.position()
    for argv, message in (
        (["terms", "publish", "v1", "--effective-from", "2024-01-01"], "already published"),
        (["void", str(grant["event_id"]), "--reason", "again"], "already voided"),
        (acceptance_of_b, "erased"),
        (["grant", "b", "ai-training"], "erased"),
        (["erase", "b"], "erased"),
    ):
        code, _, err = cli(*argv)
        assert (code, message in err) == (4, True), err
    assert cli.position() == before


def test_voiding_a_void_or_terms_publication_is_refused(cli: Cli) -> None:
    published = cli.json("terms", "publish", "v1", "--effective-from", "2024-01-01")
    grant = cli.json("grant", "a", "ai-training")
    void = cli.json("void", str(grant["event_id"]), "--reason", "mistake")
    for target in (published["event_id"], void["event_id"]):
        code, _, err = cli("void", str(target), "--reason", "no")
        assert code == 2
        assert "only grants, revocations and terms acceptances" in err


def test_demo_walks_through_every_rule_and_loads_only_once(cli: Cli) -> None:
    code, out, _ = cli("demo")
    assert code == 0
    for basis in (
        "terms-default",
        "explicit-revocation",
        "explicit-grant",
        "opt-in-required",
        "grant-expired",
        "erased",
        "no-terms-accepted",
    ):
        assert basis in out
    position = cli.position()
    code, again, _ = cli("demo")
    assert (code, again) == (0, out.replace(f"position {position}", f"position {position}"))
    assert cli.position() == position


def test_console_script_runs_as_a_separate_process(sqlite_url: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("consent-ledger")
    env_args = ["--database-url", sqlite_url, "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        [str(exe), "grant", "artist-9", "ai-training", "--json", *env_args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [str(exe), "grant", "artist-9", "ai-trainin", *env_args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
