"""BRIEF §2.1 through the command line, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli_ledger import Cli


@pytest.fixture
def cli(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(database_url, tmp_path / "data", capsys)


def test_featured_singer_revocation_denies_the_owners_track(cli: Cli) -> None:
    cli("grant", "label-owner", "ai-training", "--party", "aurora-labs")
    cli("grant", "singer", "ai-training", "--party", "aurora-labs", "--aspect", "voice")
    code, _, err = cli(
        "content", "register", "t1", "--owner", "label-owner", "--contributor", "singer=voice",
        "--isrc", "US-S1Z-99-00001",
    )  # fmt: skip
    assert code == 0, err
    allowed = cli.json("check", "label-owner", "ai-training", "--party", "aurora-labs",
                       "--content", "t1")  # fmt: skip
    assert allowed["allowed"] is True
    assert allowed["conditions"] == []
    assert "contributor" not in allowed
    revocation = cli.json(
        "revoke", "singer", "ai-training", "--party", "aurora-labs", "--aspect", "voice"
    )
    denied = cli.json("check", "label-owner", "ai-training", "--party", "aurora-labs",
                      "--content", "t1")  # fmt: skip
    assert denied["allowed"] is False
    assert denied["basis"] == "contributor-denied"
    assert denied["contributor"] == "singer"
    assert denied["contributor_basis"] == "explicit-revocation"
    assert denied["event_ids"] == [revocation["event_id"]]
    # The catalogue question is decided by the owner's events alone.
    catalogue = cli.json("check", "label-owner", "ai-training", "--party", "aurora-labs")
    assert catalogue["allowed"] is True


def test_model_scoped_conditional_grant_answers_only_questions_naming_the_model(cli: Cli) -> None:
    grant = cli.json(
        "grant", "artist", "ai-generative-training", "--party", "aurora-labs",
        "--model", "melody-v2", "--condition", "credit the artist", "--condition", "no voice clone",
    )  # fmt: skip
    named = cli.json("check", "artist", "ai-generative-training", "--party", "aurora-labs",
                     "--model", "melody-v2")  # fmt: skip
    assert named["allowed"] is True
    assert named["event_ids"] == [grant["event_id"]]
    assert named["conditions"] == ["credit the artist", "no voice clone"]
    unnamed = cli.json("check", "artist", "ai-generative-training", "--party", "aurora-labs")
    assert (unnamed["allowed"], unnamed["basis"]) == (False, "opt-in-required")
    other = cli.json("check", "artist", "ai-generative-training", "--party", "aurora-labs",
                     "--model", "melody-v3")  # fmt: skip
    assert other["allowed"] is False


def test_agent_writes_only_while_its_authority_is_in_force(cli: Cli) -> None:
    before = cli.position()
    code, _, err = cli("grant", "artist", "ai-training", "--actor", "acme-label")
    assert code == 6
    assert err.count("\n") == 1
    assert "acme-label" in err
    assert cli.position() == before
    cli("authority", "grant", "artist", "acme-label", "--purpose", "ai-training")
    code, _, err = cli("grant", "artist", "ai-training", "--actor", "acme-label")
    assert code == 0, err
    # An authority limited to some purposes cannot accept terms.
    cli(
        "terms",
        "publish",
        "v1",
        "--effective-from",
        "2020-01-01",
        "--clause",
        "ai-training=granted",
    )
    code, _, _ = cli("terms", "accept", "artist", "v1", "--actor", "acme-label")
    assert code == 6
    cli("authority", "revoke", "artist", "acme-label")
    code, _, _ = cli("revoke", "artist", "ai-training", "--actor", "acme-label")
    assert code == 6
    code, _, err = cli("authority", "revoke", "artist", "acme-label")
    assert code == 3
    assert "in force" in err
    # What the agent did while authorised stands.
    assert cli.json("check", "artist", "ai-training")["basis"] == "explicit-grant"
    history = cli.json("history", "artist")
    actors = [e.get("actor") for e in history["events"] if e["type"] == "ConsentGranted"]  # type: ignore[attr-defined]
    assert actors == ["acme-label"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["content", "register", "t1", "--owner", "o", "--contributor", "s=smell"], "aspect"),
        (["content", "register", "t1", "--owner", "o", "--contributor", "o=voice"], "owner"),
        (
            ["content", "register", "t1", "--owner", "o", "--contributor", "s=voice",
             "--contributor", "s=music"],
            "twice",
        ),
        (["content", "register", "t1", "--owner", "o", "--isrc", "US-S1Z-99-0001"], "isrc"),
        (["content", "register", "t1", "--owner", "o", "--iswc", "T-034.524.680-2"], "iswc"),
        (["authority", "grant", "artist", "platform"], "agent"),
        (["authority", "grant", "artist", "*"], "agent"),
        (["grant", "artist", "ai-training", "--model", "Bad Model"], "model"),
        (["grant", "artist", "ai-training", "--condition", "x" * 501], "condition"),
    ],
)  # fmt: skip
def test_bad_rights_input_is_one_clear_line_and_writes_nothing(
    cli: Cli, argv: list[str], fragment: str
) -> None:
    before = cli.position()
    code, _, err = cli(*argv)
    assert code == 2
    assert err.count("\n") == 1
    assert fragment in err
    assert cli.position() == before


def test_content_keeps_the_owner_of_its_first_registration(cli: Cli) -> None:
    assert cli("content", "register", "t1", "--owner", "first")[0] == 0
    before = cli.position()
    code, _, err = cli("content", "register", "t1", "--owner", "second")
    assert code == 4
    assert "first" in err
    assert cli.position() == before
    assert cli("content", "register", "t1", "--owner", "first", "--iswc", "T0345246801")[0] == 0
