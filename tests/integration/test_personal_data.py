"""Personal data never reaches the logs, and is only ciphertext at rest.

A full run through the HTTP API records evidence with an IP address, an e-mail address,
a name and a user agent, reads it back, erases the subject and goes on asking about it.
Every log line of that run is scanned; so are the raw bytes of the database and key files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from services.api_keys import Role
from services.bootstrap import bootstrap
from services.logs import configure_logging
from services.settings import Settings
from tests.integration.api_support import TERMS_2025, running_api

IP = "203.0.113.77"
EMAIL = "nadia.unique-artist@example.org"
NAME = "Nadia Quixotic-Balladeer"
AGENT = "Mozilla/5.0 (UniqueTestBrowser/9.9)"
SUBJECT = "artist-erased-7q"
PERSONAL = [IP, EMAIL, NAME, AGENT]


def test_a_full_run_logs_no_personal_data_and_no_erased_subject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    services = bootstrap(Settings(database_url=f"sqlite:///{db}", data_dir=tmp_path / "data"))
    configure_logging("json", "debug")
    try:
        with running_api(services) as api:
            evidence = {"ip": IP, "email": EMAIL, "name": NAME, "user_agent": AGENT,
                        "channel": "web", "method": "checkbox"}  # fmt: skip
            assert api.post("/v1/terms", TERMS_2025).status_code == 201
            for route, body in [
                ("terms-acceptances", {"version": TERMS_2025["version"], "evidence": evidence}),
                ("grants", {"purpose": "ai-training", "evidence": evidence}),
                ("revocations", {"purpose": "data-mining", "evidence": evidence}),
            ]:
                response = api.post(f"/v1/subjects/{SUBJECT}/{route}", body, Role.WRITER)
                assert response.status_code == 201, response.text
            history = api.get(f"/v1/subjects/{SUBJECT}/history", Role.AUDITOR)
            assert EMAIL in history.text  # the auditor sees the evidence, the logs do not
            capsys.readouterr()  # what was logged before the erasure is checked below too
            before = capsys.readouterr().err
            assert api.post(f"/v1/subjects/{SUBJECT}/erasure", {}).status_code == 201
            # after the erasure: reads, a refused write, a history, AI signals
            api.get("/v1/check", Role.READER, params={"subject": SUBJECT, "purpose": "ai-training"})
            refused = api.post(
                f"/v1/subjects/{SUBJECT}/grants", {"purpose": "ai-training"}, Role.WRITER
            )
            assert refused.status_code == 409
            api.get(f"/v1/subjects/{SUBJECT}/history", Role.AUDITOR)
            api.get(f"/v1/subjects/{SUBJECT}/content/t1/ai-signals", Role.READER)
            after = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
        services.close()
    lines = [json.loads(line) for line in (before + after).splitlines() if line.startswith("{")]
    assert lines, "the run logged nothing: the scan would prove nothing"
    logged = before + after
    for value in PERSONAL:
        assert value not in logged, f"personal data {value!r} reached the logs"
    assert SUBJECT not in after, "a log line named the subject after its erasure"
    for key in api.keys.values():
        assert key not in logged


def test_personal_data_at_rest_is_ciphertext(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    data = tmp_path / "data"
    services = bootstrap(Settings(database_url=f"sqlite:///{db}", data_dir=data))
    try:
        services.ledger.grant(
            SUBJECT,
            "ai-training",
            evidence={"ip": IP, "email": EMAIL, "name": NAME, "user_agent": AGENT},
        )
        services.projector.catch_up()
        services.log.catch_up()
        assert EMAIL in json.dumps(services.ledger.history(SUBJECT)[0].evidence)
    finally:
        services.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SUBJECT.encode() in stored  # the scan reads the right files: pseudonymous facts stay
    for value in PERSONAL:
        assert value.encode() not in stored, f"{value!r} is stored in plain text"
