"""The dispute dossier over HTTP, on both backends: decisions, evidence, terms and proofs.

Its proofs are checked twice: by `projections.dossier.verify_dossier`, and by a slow
reference written here from the RFCs alone (RFC 8785, RFC 9162 §2.1.3.2, Ed25519), as a
court's own verifier would be.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.instants import format_instant, parse_instant
from projections.dossier import DOSSIER_FORMAT, DossierVerificationError, verify_dossier
from services.api_keys import Role
from services.bootstrap import Services
from services.demo import Scenario, load_demo
from tests.integration.api_support import Api, assert_problem, running_api

DOCUMENT_SHA256 = "5f" * 32


@pytest.fixture
def demo(services: Services) -> Iterator[tuple[Api, Scenario]]:
    """Yield a running API over a ledger loaded with the demo, and the demo's landmarks."""
    scenario = load_demo(services.ledger)
    with running_api(services) as api:
        yield api, scenario


def dossier(api: Api, subject: str, role: Role = Role.AUDITOR, **params: Any) -> dict[str, Any]:
    """GET a subject's dossier and return it (asserting 200)."""
    answer = api.get(f"/v1/subjects/{subject}/dossier", role, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def reference_verify(document: dict[str, Any]) -> int:
    """Check every proof of a dossier from the RFCs alone; return how many were checked."""
    head = document["checkpoint"]
    signed = {name: head[name] for name in ("log_id", "tree_size", "root_hash", "timestamp")}
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(head["public_key"]))
    key.verify(base64.b64decode(head["signature"]), rfc8785.dumps(signed))  # raises if bad
    checked = 0
    for event in document["events"]:
        proof = event["proof"]
        leaf = hashlib.sha256(b"\x00" + rfc8785.dumps(event["record"])).digest()
        assert leaf.hex() == proof["leaf_hash"]
        # RFC 9162 §2.1.3.2
        fn, sn, r = proof["leaf_index"], proof["tree_size"] - 1, leaf
        for hex_node in proof["audit_path"]:
            p = bytes.fromhex(hex_node)
            assert sn != 0
            if fn & 1 or fn == sn:
                r = hashlib.sha256(b"\x01" + p + r).digest()
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
            else:
                r = hashlib.sha256(b"\x01" + r + p).digest()
            fn, sn = fn >> 1, sn >> 1
        assert sn == 0
        assert r.hex() == head["root_hash"]
        checked += 1
    return checked


def test_dossier_decides_every_purpose_as_the_check_route_does(
    demo: tuple[Api, Scenario],
) -> None:
    api, _ = demo
    body = dossier(api, "artist-echo", at="2024-06-01")
    question = body["question"]
    assert body["format"] == DOSSIER_FORMAT
    assert question["at"] == "2024-06-01T00:00:00.000000Z"
    assert question["purposes"] == list(api.services.ledger.vocabulary.purposes)
    for decision in body["decisions"]:
        check = api.get(
            "/v1/check",
            Role.READER,
            params={
                "subject": "artist-echo",
                "purpose": decision["purpose"],
                "at": question["at"],
                "known_at": question["known_at"],
            },
        ).json()
        assert {k: decision[k] for k in check} == check
    training = next(d for d in body["decisions"] if d["purpose"] == "ai-training")
    assert (training["allowed"], training["basis"]) == (False, "explicit-revocation")
    assert training["terms_version"] == "2024-02"
    revocation = next(e for e in body["events"] if e["type"] == "ConsentRevoked")
    assert training["event_ids"] == [revocation["event_id"]]
    assert revocation["rests_on"] == ["ai-training"]


def test_dossier_proofs_verify_offline_against_its_signed_checkpoint(
    demo: tuple[Api, Scenario],
) -> None:
    api, _ = demo
    body = dossier(api, "artist-echo", at="2024-06-01")
    offline = orjson.loads(orjson.dumps(body))  # what a court holds: the bytes, nothing else
    assert body["proofs"] == "complete"
    assert verify_dossier(offline) == len(body["events"]) == 5  # 4 events + terms in force
    assert reference_verify(offline) == len(body["events"])
    published = api.get("/v1/ledger/checkpoint", Role.READER).json()
    assert body["checkpoint"]["public_key"] == published["public_key"]
    assert verify_dossier(offline, published["public_key"]) == 5


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("events", 1, "record", "effective_at"), "2024-01-01T00:00:00.000000Z"),
        (("events", 1, "type"), "ConsentGranted"),
        (("events", 1, "proof", "audit_path", 0), "00" * 32),
        (("checkpoint", "root_hash"), "11" * 32),
    ],
    ids=["record", "readable-type", "audit-path", "root"],
)
def test_altered_dossier_does_not_verify(
    demo: tuple[Api, Scenario], path: tuple[str | int, ...], value: str
) -> None:
    api, _ = demo
    body = dossier(api, "artist-echo", at="2024-06-01")
    altered = copy.deepcopy(body)
    node: Any = altered
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(DossierVerificationError):
        verify_dossier(altered)


def test_dossier_opens_evidence_while_its_record_holds_only_ciphertext(
    demo: tuple[Api, Scenario],
) -> None:
    api, _ = demo
    body = dossier(api, "artist-echo", purpose="ai-generative-training", aspect="voice")
    (decision,) = body["decisions"]
    assert (decision["allowed"], decision["basis"]) == (True, "explicit-grant")
    grant = next(e for e in body["events"] if e["event_id"] == decision["event_ids"][0])
    assert grant["evidence"] == {
        "channel": "web",
        "method": "opt-in-form",
        "email": "echo@example.org",
    }
    assert grant["rests_on"] == ["ai-generative-training"]
    assert "sealed" in grant["record"]["evidence"]
    assert b"echo@example.org" not in orjson.dumps(grant["record"])


def test_dossier_names_the_terms_in_force_with_their_document_hash(services: Services) -> None:
    ledger = services.ledger
    clauses = [{"purpose": "personalization", "default": "granted"}]
    publication = ledger.publish_terms(
        "2025-09", parse_instant("2025-09-01"), clauses, DOCUMENT_SHA256
    )
    acceptance = ledger.accept_terms(
        "artist-terms", "2025-09", effective_at=parse_instant("2025-09-02")
    )
    with running_api(services) as api:
        body = dossier(api, "artist-terms", at="2025-10-01", purpose="personalization")
    terms = body["terms_in_force"]
    assert terms["version"] == "2025-09"
    assert terms["document_sha256"] == DOCUMENT_SHA256
    assert terms["clauses"] == clauses
    assert terms["acceptance_event_id"] == str(acceptance.event_id)
    (decision,) = body["decisions"]
    assert (decision["allowed"], decision["basis"]) == (True, "terms-default")
    assert decision["event_ids"] == [str(acceptance.event_id)]
    shown = {e["event_id"]: e for e in body["events"]}
    published = shown[str(publication.event_id)]
    assert published["type"] == "TermsPublished"
    assert published["document_sha256"] == DOCUMENT_SHA256
    assert verify_dossier(body) == 2


def test_dossier_as_known_before_a_backfill_leaves_it_out(demo: tuple[Api, Scenario]) -> None:
    api, scenario = demo
    before = format_instant(scenario.paper_consent.recorded_at - timedelta(microseconds=1))
    then = dossier(api, "artist-orion", at="2024-01-01", known_at=before, purpose="ai-training")
    assert then["events"] == []
    assert then["recorded_after_known_at"] == 1
    assert then["decisions"][0]["allowed"] is False
    now = dossier(api, "artist-orion", at="2024-01-01", purpose="ai-training")
    assert now["decisions"][0]["basis"] == "explicit-grant"
    assert now["events"][0]["evidence"]["name"] == "O. Rion"
    assert now["recorded_after_known_at"] == 0


def test_voided_grant_is_listed_with_its_void_and_decides_nothing(
    demo: tuple[Api, Scenario],
) -> None:
    api, scenario = demo
    body = dossier(api, "artist-nova", purpose="ai-generative-training")
    assert body["decisions"][0]["basis"] == "opt-in-required"
    shown = {e["event_id"]: e for e in body["events"]}
    grant = shown[str(scenario.mistaken_grant.event_id)]
    assert grant["voided_by"] == str(scenario.void.event_id)
    assert grant["rests_on"] == []
    assert shown[str(scenario.void.event_id)]["type"] == "EventVoided"


def test_dossier_needs_an_auditor_or_admin_key(demo: tuple[Api, Scenario]) -> None:
    api, _ = demo
    url = "/v1/subjects/artist-echo/dossier"
    assert_problem(api.client.get(url), 401)
    for role in (Role.READER, Role.WRITER):
        assert_problem(api.get(url, role), 403)
    for role in (Role.AUDITOR, Role.ADMIN):
        assert api.get(url, role).status_code == 200


def test_dossier_refuses_unknown_subjects_purposes_and_zone_less_times(
    demo: tuple[Api, Scenario],
) -> None:
    api, _ = demo
    assert_problem(api.get("/v1/subjects/artist-nobody/dossier"), 404, "Unknown subject")
    unknown = api.get("/v1/subjects/artist-echo/dossier", params={"purpose": "mind-reading"})
    assert_problem(unknown, 422)
    zoneless = api.get("/v1/subjects/artist-echo/dossier", params={"at": "2024-06-01T12:00:00"})
    assert_problem(zoneless, 422)
