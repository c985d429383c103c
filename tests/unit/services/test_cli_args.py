"""The command line's parsing: help for every argument, global flags anywhere, clear errors."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.vocabulary import DEFAULT_PURPOSES
from services.cli.main import build_parser, main, parse_args
from services.cli.projections import read_pairs


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Yield a parser and every sub-parser under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from parsers(child)


def test_every_argument_of_every_verb_has_help_text() -> None:
    missing = [
        f"{p.prog} {action.dest}"
        for p in parsers(build_parser())
        for action in p._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not missing, missing


def test_top_level_help_lists_every_purpose_and_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for purpose in DEFAULT_PURPOSES:
        assert purpose.name in out
    assert "examples:" in out
    assert "consent-ledger check artist-1" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--database-url", "sqlite:///x.db", "--data-dir", "d", "check", "a", "p"],
        ["check", "a", "p", "--json", "--database-url", "sqlite:///x.db", "--data-dir", "d"],
        ["--database-url", "sqlite:///x.db", "check", "--json", "a", "p", "--data-dir", "d"],
    ],
    ids=["before", "after", "both"],
)
def test_global_flags_are_accepted_before_and_after_the_verb(argv: list[str]) -> None:
    args = parse_args(argv)
    assert (args.verb, args.subject, args.purpose) == ("check", "a", "p")
    assert args.json is True
    assert args.database_url == "sqlite:///x.db"
    assert args.data_dir == Path("d")


def test_global_flags_given_nowhere_take_their_defaults() -> None:
    args = parse_args(["terms", "accept", "a", "v1"])
    assert (args.json, args.database_url, args.data_dir) == (False, None, None)
    assert args.kafka_bootstrap_servers is None


def test_a_time_in_words_is_reported_as_not_iso_8601_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "a", "ai-training", "--at", "june 2024"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--at" in err
    assert "is not an ISO 8601 instant" in err
    assert "zone" not in err


def test_a_time_without_a_zone_is_reported_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grant", "a", "ai-training", "--at", "2024-06-01T12:00"]) == 2
    assert "has no zone" in capsys.readouterr().err


@pytest.mark.parametrize(
    "header",
    ["subject,content", "Subject, Content", '"subject","content"', "\ufeffsubject,content"],
    ids=["plain", "capitalised", "quoted", "byte-order-mark"],
)
def test_filter_skips_a_csv_header_line(header: str) -> None:
    lines = ["", f"{header}\r\n", "subject,track-1\n", "artist-1,track-2\n"]
    assert list(read_pairs(lines)) == [("subject", "track-1"), ("artist-1", "track-2")]


def test_filter_reads_a_subject_called_subject_when_it_is_not_the_header() -> None:
    assert list(read_pairs(["artist-1,t\n", "subject,content\n"])) == [
        ("artist-1", "t"),
        ("subject", "content"),
    ]


@pytest.mark.parametrize("text", ["\x1e0", "a\nb", "a\u2028b", "a\x85b", "a\rb"], ids=repr)
def test_an_argument_holding_a_line_break_is_reported_on_one_line(
    capsys: pytest.CaptureFixture[str], text: str
) -> None:
    assert main(["grant", "a", "ai-training", "extra", text]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("consent-ledger: error: unrecognized arguments: ")
