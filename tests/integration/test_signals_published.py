"""As-served evidence: SignalsPublished on change (not per request), a leaf like any event.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from ledger.events import SignalsPublished
from ledger.records import record_of
from services.bootstrap import Services
from services.cli.main import main

pytestmark = pytest.mark.timeout(120)
TEMPLATE = "https://music.example/{subject}/{content}"


def published(services: Services, subject: str) -> list[SignalsPublished]:
    return [
        e.event
        for e in services.ledger.subject_entries(subject)
        if isinstance(e.event, SignalsPublished)
    ]


def test_a_change_is_recorded_once_and_reading_records_nothing(services: Services) -> None:
    ledger, signals = services.ledger, services.signals
    ledger.grant("artist-1", "ai-training", party="*")
    ledger.grant("artist-1", "ai-generative-training", party="*", content_ids=["track-1"])
    first = signals.publish()
    assert len(first.published) == 2  # the catalogue and track-1
    for _ in range(3):
        signals.page("artist-1", "track-1")
    assert signals.publish().published == []
    assert len(published(services, "artist-1")) == 2


def test_a_grant_to_a_named_party_publishes_nothing(services: Services) -> None:
    services.ledger.grant("artist-1", "ai-training", party="aurora-labs")
    services.ledger.grant("artist-1", "personalization", party="*")  # no vocabulary maps it
    assert services.signals.publish().published == []


def test_a_catalogue_revocation_republishes_every_published_content_that_changed(
    services: Services,
) -> None:
    ledger, signals = services.ledger, services.signals
    ledger.grant("artist-1", "ai-generative-training", party="*")
    ledger.grant("artist-1", "data-mining", party="*", content_ids=["track-1"])
    signals.publish()
    ledger.revoke("artist-1", "ai-generative-training", party="*")
    report = signals.publish()
    assert len(report.published) == 2
    events = published(services, "artist-1")
    latest = {e.content: e for e in events}
    assert latest[None].signals["x_robots_tag"] == "noai, noimageai"
    assert latest["track-1"].signals["x_robots_tag"] == "noai, noimageai"
    assert latest["track-1"].signals["tdm"]["tdm-reservation"] == 0


def test_the_event_holds_the_digest_of_each_output_and_the_vocabulary_versions(
    services: Services,
) -> None:
    services.ledger.revoke("artist-1", "ai-training", party="*", content_ids=["track-1"])
    services.signals.publish()
    (event,) = published(services, "artist-1")
    expected = services.signals.page("artist-1", "track-1").signals
    assert event.content == "track-1"
    assert event.digests == expected.digests()
    assert event.vocabularies == dict(expected.versions)
    assert event.signals == expected.statement()


def test_signals_published_is_a_merkle_leaf_like_every_event(services: Services) -> None:
    services.ledger.grant("artist-1", "ai-training", party="*")
    receipt = services.signals.publish().published[0]
    services.log.catch_up()
    leaf = services.log.leaf_at(receipt.position)
    assert UUID(leaf.event_id) == receipt.event_id
    entry = next(
        e for e in services.ledger.subject_entries("artist-1") if e.position == receipt.position
    )
    record = record_of(entry, leaf.leaf_index)
    assert record["type"] == "SignalsPublished"
    assert record["subject"] == "artist-1"
    assert set(record["digests"]) >= {"aipref", "tdmrep", "cawg", "rsl", "noai"}


def test_an_erasure_publishes_everything_denied(services: Services) -> None:
    services.ledger.grant("artist-1", "ai-generative-training", party="*")
    services.signals.publish()
    services.ledger.erase("artist-1")
    (receipt,) = services.signals.publish().published
    events = published(services, "artist-1")
    assert events[-1].signals["x_robots_tag"] == "noai, noimageai"
    assert events[-1].event_id == receipt.event_id


def test_signals_history_shows_what_was_published_at_a_date(
    services: Services, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = services.settings
    argv = ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir), "--json"]
    services.ledger.grant("artist-1", "ai-generative-training", party="*", content_ids=["t1"])
    services.signals.publish()
    between = datetime.now(UTC)
    services.ledger.revoke("artist-1", "ai-generative-training", party="*", content_ids=["t1"])
    services.signals.publish()
    assert main(["signals", "history", "artist-1", "t1", *argv]) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert [r["signals"]["x_robots_tag"] for r in rows] == [None, "noai, noimageai"]
    assert main(["signals", "history", "artist-1", "t1", "--at", between.isoformat(), *argv]) == 0
    (then,) = orjson.loads(capsys.readouterr().out)
    assert then["signals"]["x_robots_tag"] is None
    assert then["digests"]["noai"] == rows[0]["digests"]["noai"]
    assert main(["signals", "history", "artist-1", "--at", "2000-01-01T00:00:00Z", *argv]) == 0
    assert orjson.loads(capsys.readouterr().out) == []


def cli_with_template(
    services: Services, monkeypatch: pytest.MonkeyPatch, template: str
) -> list[str]:
    """Set LEDGER_CONTENT_URL_TEMPLATE; return the flags naming this ledger."""
    monkeypatch.setenv("LEDGER_CONTENT_URL_TEMPLATE", template)
    settings = services.settings
    return ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir)]


def test_the_cli_publishes_once_and_exports_the_site_files_with_their_digests(
    services: Services,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = cli_with_template(services, monkeypatch, TEMPLATE)
    services.ledger.grant("artist-1", "ai-training", party="*")
    assert main(["signals", "publish", "--json", *argv]) == 0
    report = orjson.loads(capsys.readouterr().out.splitlines()[-1])
    assert len(report["published"]) == 1
    assert main(["signals", "publish", "--json", *argv]) == 0
    assert orjson.loads(capsys.readouterr().out)["published"] == []
    out = tmp_path / "site"
    assert main(["signals", "export", str(out), "--json", *argv]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert set(summary["files"]) == {"robots.txt", "tdmrep.json", "rsl.xml"}
    for name, file in summary["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == file["sha256"]
    assert "Content-Usage: /artist-1/ train-ai=n" not in (out / "robots.txt").read_text()


def test_a_url_template_without_subject_is_refused_in_one_line(
    services: Services,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = cli_with_template(services, monkeypatch, "https://music.example/{content}")
    assert main(["signals", "export", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "{subject}" in err
    assert not (tmp_path / "x").exists()
