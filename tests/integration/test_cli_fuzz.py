"""Fuzz the command line and its time parsing with hypothesis.

Whatever the arguments, `consent-ledger` answers with an exit code from its documented set
and at most one line on stderr, never a traceback; a refused command writes nothing.
"""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInstantError
from ledger.instants import parse_instant
from services.bootstrap import bootstrap
from services.cli.main import main
from services.settings import Settings

EXIT_CODES = {0, 1, 2, 3, 4, 5}
VERBS = ["grant", "revoke", "check", "history", "void", "erase", "terms", "filter", "content",
         "authority", "snapshot", "datasets", "signals", "receipt", "dossier", "keys"]  # fmt: skip
FLAGS = ["--party", "--content", "--aspect", "--at", "--known-at", "--expires", "--json",
         "--reason", "--model", "--actor", "--condition", "--purpose", "--clause",
         "--effective-from", "--role"]  # fmt: skip
WORDS = ["artist-1", "ai-training", "ai-generative-training", "platform", "*", "all", "voice",
         "2025-05-01", "2025-05-01T12:00:00Z", "2025-05-01T12:00:00", "june 2024", "publish",
         "accept", "grant", "revoke", "register", "denied", "granted", "ai-training=granted",
         "", " ", "-", "--", "\x00", "\u0085", "x" * 300, "9" * 40,
         "00000000-0000-0000-0000-000000000000"]  # fmt: skip

tokens = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(FLAGS),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
).filter(lambda t: t not in ("-h", "--help") and not t.startswith("--h"))


@given(st.text(max_size=40))
def test_parsing_any_text_as_a_time_gives_an_aware_instant_or_a_clear_refusal(text: str) -> None:
    try:
        value = parse_instant(text, field="--at")
    except InvalidInstantError as error:
        refusal = error.detail
        assert "--at" in refusal
    else:
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                   timezone(-timedelta(hours=8))]),
    )
)  # fmt: skip
def test_an_aware_iso_time_parses_to_the_same_instant(value: datetime) -> None:
    assert parse_instant(value.isoformat()) == value


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("fuzz-cli")
    url = f"sqlite:///{folder / 'ledger.db'}"
    data = folder / "data"
    services = bootstrap(Settings(database_url=url, data_dir=data))
    services.ledger.grant("artist-1", "ai-training")
    services.close()
    return url, data


def position(url: str, data: Path) -> int:
    services = bootstrap(Settings(database_url=url, data_dir=data))
    try:
        return services.ledger.ledger_position()
    finally:
        services.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(verb=st.sampled_from(VERBS), rest=st.lists(tokens, max_size=6))
def test_any_command_line_exits_with_a_documented_code_and_one_line(
    ledger_url: tuple[str, Path], verb: str, rest: list[str]
) -> None:
    url, data = ledger_url
    before = position(url, data)
    err, out = io.StringIO(), io.StringIO()
    stdin = io.StringIO("")  # verbs that read stdin (filter) get an empty input
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        mock.patch("sys.stdin", stdin),
    ):
        code = main([verb, *rest, "--database-url", url, "--data-dir", str(data)])
    assert code in EXIT_CODES, (verb, rest, code, err.getvalue())
    if code not in (0, 1):
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1, (verb, rest, lines)
        assert lines[0].startswith("consent-ledger"), lines
        assert "Traceback" not in err.getvalue()
        assert position(url, data) == before, f"refused {[verb, *rest]} wrote to the ledger"
