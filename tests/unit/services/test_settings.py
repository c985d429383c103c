"""The one settings object: every variable typed and validated, a bad one is one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.cli.main import main
from services.settings import Settings, SettingsError


def test_settings_read_every_variable_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "LEDGER_DATABASE_URL": "postgresql://db/ledger",
        "LEDGER_DATA_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
        "LEDGER_TOPIC_PREFIX": "staging.",
        "LEDGER_LOG_FORMAT": "json",
        "LEDGER_LOG_LEVEL": "WARNING",
        "LEDGER_LOG_ID": "log-7",
        "LEDGER_PURPOSES_FILE": str(tmp_path / "purposes.json"),
        "LEDGER_CHECKPOINT_EVERY_EVENTS": "50",
        "LEDGER_CHECKPOINT_EVERY_SECONDS": "2.5",
        "LEDGER_API_GROUP_COMMIT": "off",
        "LEDGER_API_COMMIT_MAX_BATCH": "64",
        "LEDGER_TDM_POLICY_URL": "https://example.org/tdm.json",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == Settings(
        database_url="postgresql://db/ledger",
        data_dir=tmp_path,
        kafka_bootstrap_servers="broker:9092",
        topic_prefix="staging.",
        log_format="json",
        log_level="warning",
        log_id="log-7",
        purposes_file=tmp_path / "purposes.json",
        checkpoint_every_events=50,
        checkpoint_every_seconds=2.5,
        api_group_commit=False,
        api_commit_max_batch=64,
        tdm_policy_url="https://example.org/tdm.json",
    )


def test_unset_or_empty_variables_mean_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in dataclasses.fields(Settings):
        monkeypatch.delenv(f"LEDGER_{field.name.upper()}", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LEDGER_DATABASE_URL", "")
    assert Settings.from_env() == Settings()


def test_settings_made_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("LEDGER_CHECKPOINT_EVERY_EVENTS", "lots")
    assert Settings().kafka_bootstrap_servers is None


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LEDGER_CHECKPOINT_EVERY_EVENTS", "lots", "valid integer"),
        ("LEDGER_CHECKPOINT_EVERY_EVENTS", "0", "greater than or equal to 1"),
        ("LEDGER_CHECKPOINT_EVERY_SECONDS", "soon", "valid number"),
        ("LEDGER_API_COMMIT_MAX_BATCH", "-1", "greater than or equal to 1"),
        ("LEDGER_API_GROUP_COMMIT", "perhaps", "valid boolean"),
        ("LEDGER_LOG_FORMAT", "xml", "'json', 'console' or 'auto'"),
        ("LEDGER_LOG_LEVEL", "loud", "want one of debug"),
    ],
)
def test_a_bad_value_is_one_clear_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        Settings.from_env()
    assert main(["check", "a", "ai-training"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"consent-ledger: error: {name}={value!r}: ")
    assert says in captured.err
    assert "Traceback" not in captured.err


def test_overrides_replace_only_what_is_given() -> None:
    base = Settings(database_url="sqlite:///a.db", topic_prefix="p.")
    changed = base.with_overrides(database_url="sqlite:///b.db", data_dir=None)
    assert changed == dataclasses.replace(base, database_url="sqlite:///b.db")
