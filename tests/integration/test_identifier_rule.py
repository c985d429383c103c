"""One identifier rule: the CLI, the HTTP API and the published OpenAPI pattern agree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidIdentifierError
from ledger.vocabulary import IDENTIFIER_PATTERN, check_identifier
from services.bootstrap import bootstrap
from services.cli.main import main
from services.settings import Settings
from tests.integration.api_support import Api, running_api

# Characters near every edge of the rule: C0, DEL, C1, Unicode blanks, the separators.
EDGES = [
    *map(chr, range(0x00, 0x21)),
    *map(chr, range(0x7F, 0xA1)),
    "\u1680", "\u2000", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f",
    "\u3000", "\ufeff", ",", "/", "\\", "?", "#", "%", "+", "&", "=", ":", "é", "🎵",
]  # fmt: skip
CHARACTERS = st.one_of(
    st.sampled_from(EDGES), st.characters(exclude_categories=["Cs"]), st.just("a")
)
IDENTIFIERS = st.one_of(
    st.text(CHARACTERS, max_size=6),
    st.sampled_from(["-a", "--json", "-"]),
    st.builds(lambda n, c: "a" * n + c, st.sampled_from([255, 256]), st.sampled_from(["", "b"])),
)


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identifier-rule")


@pytest.fixture(scope="module")
def api(ledger_dir: Path) -> Iterator[Api]:
    services = bootstrap(
        Settings(database_url=f"sqlite:///{ledger_dir / 'ledger.db'}", data_dir=ledger_dir / "d")
    )
    try:
        with running_api(services) as api:
            yield api
    finally:
        services.close()


def cli_refuses(ledger_dir: Path, subject: str, capsys: pytest.CaptureFixture[str]) -> bool:
    url = f"sqlite:///{ledger_dir / 'ledger.db'}"
    flags = ["--database-url", url, "--data-dir", str(ledger_dir / "d")]
    code = main(["check", *flags, "--", subject, "ai-training"])  # `--`: "-a" is an id too
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert "subject" in err
    return code == 2


def http_refuses(api: Api, subject: str) -> bool:
    response = api.get("/v1/check", params={"subject": subject, "purpose": "ai-training"})
    status: int = response.status_code
    assert status in (200, 422), response.text
    return status == 422


def rule_refuses(subject: str) -> bool:
    try:
        check_identifier(subject, field="subject")
    except InvalidIdentifierError:
        return True
    return False


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=IDENTIFIERS)
def test_cli_and_http_refuse_the_same_identifiers(
    api: Api, ledger_dir: Path, capsys: pytest.CaptureFixture[str], subject: str
) -> None:
    expected = rule_refuses(subject)
    assert cli_refuses(ledger_dir, subject, capsys) is expected
    assert http_refuses(api, subject) is expected


@pytest.mark.parametrize("control", ["\x85", "\x9f", "\x80", "\x00", "\x7f"], ids=repr)
def test_cli_refuses_control_characters_as_http_does(
    api: Api, ledger_dir: Path, capsys: pytest.CaptureFixture[str], control: str
) -> None:
    assert cli_refuses(ledger_dir, f"artist{control}1", capsys)
    assert http_refuses(api, f"artist{control}1")


def test_a_final_newline_is_refused_too() -> None:
    assert rule_refuses("artist-1\n")


@given(subject=IDENTIFIERS)
def test_the_openapi_pattern_is_the_rule(subject: str) -> None:
    published = re.compile(IDENTIFIER_PATTERN)
    assert (published.fullmatch(subject) is None) is rule_refuses(subject)


def test_the_api_publishes_the_rule_as_the_pattern_of_every_identifier(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    check = schema["paths"]["/v1/check"]["get"]["parameters"]
    patterns = {p["name"]: p["schema"].get("pattern") for p in check}
    assert patterns["subject"] == IDENTIFIER_PATTERN
    assert patterns["content"] == IDENTIFIER_PATTERN or any(
        branch.get("pattern") == IDENTIFIER_PATTERN
        for p in check
        if p["name"] == "content"
        for branch in p["schema"].get("anyOf", ())
    )
