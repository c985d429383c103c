"""Signed consent receipts: issued from the ledger, verified offline, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.receipts import build_receipt, expand_dpv, verify_receipt
from services.api_keys import Role
from services.bootstrap import Services
from services.cli.main import main
from tests.integration.api_support import Api, assert_problem, running_api


def public_key(services: Services) -> bytes:
    return services.log.key.public_key_raw()


def test_receipt_of_a_grant_verifies_offline_and_expands_as_dpv(services: Services) -> None:
    ledger = services.ledger
    ledger.publish_terms(
        "v1", ledger.clock.now(), [{"purpose": "ai-training", "default": "denied"}]
    )
    ledger.accept_terms("artist", "v1")
    grant = ledger.grant(
        "artist",
        "ai-generative-training",
        party="aurora-labs",
        model="melody-v2",
        conditions=["credit the artist"],
        evidence={"channel": "web", "email": "a@example.org"},
    )
    receipt = build_receipt(ledger, services.log, grant.event_id)
    assert verify_receipt(receipt, public_key(services)) == []
    assert receipt["state"] == "ConsentGiven"
    assert receipt["terms"]["version"] == "v1"
    assert receipt["recipients"] == ["aurora-labs"]
    assert receipt["conditions"] == ["credit the artist"]
    assert receipt["evidence"]["email"] == "a@example.org"
    (node,) = expand_dpv(receipt)
    assert node["@type"] == ["https://w3id.org/dpv#ConsentRecord"]
    assert node["https://w3id.org/dpv#hasConsentStatus"] == [
        {"@id": "https://w3id.org/dpv#ConsentGiven"}
    ]


def test_tampered_receipt_or_wrong_key_fails_naming_the_check(services: Services) -> None:
    grant = services.ledger.grant("artist", "ai-training")
    receipt = build_receipt(services.ledger, services.log, grant.event_id)
    tampered = {**receipt, "purpose": "data-mining"}
    assert any("signature" in f for f in verify_receipt(tampered, public_key(services)))
    record = {**receipt["ledger_proof"]["record"], "party": "crawler"}
    forged = {**receipt, "ledger_proof": {**receipt["ledger_proof"], "record": record}}
    failures = verify_receipt(forged, public_key(services))
    assert any("inclusion proof" in f for f in failures)
    assert any("public_key" in f for f in verify_receipt(receipt, b"\x01" * 32))


def test_receipt_states_follow_who_revoked_voids_and_erasure(services: Services) -> None:
    ledger = services.ledger
    own = ledger.revoke("artist", "ai-training", evidence={"ip": "192.0.2.1"})
    ledger.grant_authority("artist", "acme-label")
    by_agent = ledger.revoke("artist", "data-mining", actor="acme-label")
    voided = ledger.grant("artist", "personalization")
    ledger.void(voided.event_id, "entered in error")
    state = {
        r.event_id: build_receipt(ledger, services.log, r.event_id)["state"]
        for r in (own, by_agent, voided)
    }
    assert state == {
        own.event_id: "ConsentWithdrawn",
        by_agent.event_id: "ConsentRevoked",
        voided.event_id: "ConsentInvalidated",
    }
    assert "evidence" in build_receipt(ledger, services.log, own.event_id)
    ledger.erase("artist")
    after = build_receipt(ledger, services.log, own.event_id, fmt="kantara")
    assert "evidence" not in after
    assert after["version"] == "KI-CR-v1.1.0"
    assert verify_receipt(after, public_key(services)) == []


def test_cli_receipt_and_receipt_verify_exit_zero_then_one(
    services: Services, settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grant = services.ledger.grant("artist", "ai-training")
    flags = ["--database-url", services.settings.database_url, "--data-dir", str(tmp_path / "data")]
    out = tmp_path / "r.json"
    assert main(["receipt", str(grant.event_id), "--out", str(out), *flags]) == 0
    key = tmp_path / "key.txt"
    key.write_text(services.log.key.public_key_b64())
    assert main(["receipt", "verify", str(out), "--public-key", str(key), *flags]) == 0
    receipt = json.loads(out.read_text())
    receipt["principal"] = "someone-else"
    out.write_text(json.dumps(receipt))
    capsys.readouterr()
    assert main(["receipt", "verify", str(out), "--public-key", str(key), *flags]) == 1
    assert "signature" in capsys.readouterr().err


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def test_http_receipt_is_json_ld_for_auditors_only(api: Api) -> None:
    grant = api.post("/v1/subjects/artist/grants", {"purpose": "ai-training"}, Role.WRITER)
    url = f"/v1/events/{grant.json()['event_id']}/receipt"
    answer = api.get(url, Role.AUDITOR)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/ld+json"
    assert verify_receipt(answer.json(), api.services.log.key.public_key_raw()) == []
    assert api.get(url + "?format=kantara", Role.AUDITOR).json()["version"] == "KI-CR-v1.1.0"
    assert_problem(api.get(url, Role.READER), 403)
    assert_problem(api.get("/v1/events/00000000-0000-4000-8000-000000000000/receipt"), 404)
