# long module: the routes of BRIEF §4 side by side, one test per behaviour
"""The HTTP API's routes behave as BRIEF §4 says, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from ledger.instants import parse_instant
from services.api_keys import Role
from services.bootstrap import Services
from services.logs import configure_logging
from tests.integration.api_support import TERMS_2025, Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def publish_and_accept(api: Api, subject: str = "artist-1") -> dict[str, Any]:
    assert api.post("/v1/terms", TERMS_2025).status_code == 201
    response = api.post(
        f"/v1/subjects/{subject}/terms-acceptances",
        {"version": "2025-05", "effective_at": "2025-05-20T00:00:00Z"},
        role=Role.WRITER,
    )
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


# ------------------------------------------------------------------ writes


def test_every_write_route_answers_201_with_a_receipt_and_appends_one_event(api: Api) -> None:
    before = api.position()
    accepted = publish_and_accept(api)
    grant = api.post(
        "/v1/subjects/artist-1/grants",
        {
            "purpose": "ai-generative-training",
            "party": "aurora-labs",
            "content_ids": ["track-1"],
            "aspect": "voice",
            "expires_at": "2099-01-01T00:00:00Z",
            "evidence": {"channel": "web", "method": "opt-in-form", "ip": "192.0.2.1"},
        },
        role=Role.WRITER,
    )
    revocation = api.post(
        "/v1/subjects/artist-1/revocations",
        {"purpose": "ai-training", "content_ids": ["track-9"], "reason": "unreleased"},
        role=Role.WRITER,
    )
    void = api.post(
        f"/v1/events/{grant.json()['event_id']}/void",
        {"reason": "entered for the wrong artist"},
        role=Role.WRITER,
    )
    erasure = api.post("/v1/subjects/artist-1/erasure", {"reason": "account closed"})
    receipts = [accepted] + [r.json() for r in (grant, revocation, void, erasure)]
    for response in (grant, revocation, void, erasure):
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/json"
    for receipt in receipts:
        assert set(receipt) == {"event_id", "position", "recorded_at"}
        assert receipt["recorded_at"].endswith("Z")
    positions = [r["position"] for r in receipts]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert api.position() == before + 6  # terms, acceptance, grant, revocation, void, erasure


def test_erasure_takes_an_empty_body(api: Api) -> None:
    assert api.post("/v1/subjects/artist-2/grants", {"purpose": "ai-training"}).status_code == 201
    response = api.client.post("/v1/subjects/artist-2/erasure", headers=api.auth())
    assert response.status_code == 201, response.text


def test_refused_writes_are_problems_and_write_nothing(api: Api) -> None:
    publish_and_accept(api)
    before = api.position()
    cases = [
        ("/v1/subjects/a/grants", {"purpose": "ai-telepathy"}, 422, "Unknown purpose"),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "aspect": "smell"}, 422, None),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "party": "Bad Party"}, 422, None),
        (
            "/v1/subjects/a/grants",
            {"purpose": "ai-training", "effective_at": "2025-05-01T12:00:00"},
            422,
            "Invalid time",
        ),
        (
            "/v1/subjects/a/grants",
            {"purpose": "ai-training", "effective_at": "9999-12-31T23:59:59-23:59"},
            422,
            "Invalid time",
        ),
        (
            "/v1/subjects/a/grants",
            {"purpose": "ai-training", "expires_at": "2020-01-01T00:00:00Z"},
            422,
            "Expiry not after effective time",
        ),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "content_id": "t"}, 422, None),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "content_ids": []}, 422, None),
        ("/v1/subjects/a/grants", [], 422, "Invalid request"),
        ("/v1/subjects/a%01b/grants", {"purpose": "ai-training"}, 422, "Invalid identifier"),
        ("/v1/subjects/a/terms-acceptances", {"version": "1999-01"}, 404, None),
        ("/v1/events/not-a-uuid/void", {"reason": "r"}, 422, None),
        (
            "/v1/events/00000000-0000-4000-8000-000000000000/void",
            {"reason": "r"},
            404,
            "Unknown event",
        ),
        ("/v1/terms", TERMS_2025, 409, "Terms version already published"),
        (
            "/v1/terms",
            {
                "version": "bad",
                "effective_from": "2025-01-01",
                "clauses": [{"purpose": "ai-generative-training", "default": "granted"}],
            },
            422,
            "Opt-in purpose cannot default to granted",
        ),
    ]
    for url, body, status, title in cases:
        assert_problem(api.post(url, body), status, title)
    malformed = api.client.post(
        "/v1/subjects/a/grants",
        content=b'{"purpose": "ai-training",',
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    body = assert_problem(malformed, 422, "Invalid request")
    assert body["errors"][0]["message"].startswith("JSON decode error at byte 26")
    unauthenticated = api.client.post(
        "/v1/subjects/a/grants",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(unauthenticated, 401)
    assert api.position() == before


def test_voiding_twice_and_writing_about_an_erased_subject_are_conflicts(api: Api) -> None:
    grant = api.post("/v1/subjects/artist-3/grants", {"purpose": "ai-training"}).json()
    assert api.post(f"/v1/events/{grant['event_id']}/void", {"reason": "typo"}).status_code == 201
    assert_problem(
        api.post(f"/v1/events/{grant['event_id']}/void", {"reason": "again"}),
        409,
        "Event already voided",
    )
    assert api.post("/v1/subjects/artist-3/erasure", {}).status_code == 201
    assert_problem(
        api.post("/v1/subjects/artist-3/grants", {"purpose": "ai-training"}), 409, "Subject erased"
    )


# ------------------------------------------------------------------- reads


def test_check_answers_the_same_body_as_the_cli(api: Api) -> None:
    publish_and_accept(api)
    last = api.post(
        "/v1/subjects/artist-1/grants", {"purpose": "ai-training", "content_ids": ["t1"]}
    ).json()
    for query, expected in [
        ({"purpose": "ai-training", "content": "t1"}, (True, "explicit-grant")),
        ({"purpose": "ai-training", "content": "t2"}, (False, "terms-default")),
        ({"purpose": "personalization"}, (True, "terms-default")),
        ({"purpose": "ai-training", "at": "2025-01-01"}, (False, "no-terms-accepted")),
        ({"purpose": "ai-training", "party": "aurora-labs"}, (False, "opt-in-required")),
    ]:
        params = {"subject": "artist-1", "min_position": last["position"], **query}
        response = api.get("/v1/check", params=params, role=Role.READER)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["allowed"], body["basis"]) == expected, query
        reference = api.services.ledger.check(
            "artist-1",
            query["purpose"],
            party=query.get("party", "platform"),
            content=query.get("content"),
            at=parse_instant(query["at"]) if "at" in query else None,
        ).to_json()
        assert body == reference


def test_check_about_a_subject_without_events_is_an_answer_not_a_404(api: Api) -> None:
    response = api.get("/v1/check", params={"subject": "nobody", "purpose": "ai-training"})
    assert response.status_code == 200
    assert response.json()["basis"] == "no-terms-accepted"


def test_check_refuses_unknown_words_and_zone_less_times(api: Api) -> None:
    base = {"subject": "artist-1", "purpose": "ai-training"}
    assert_problem(api.get("/v1/check", params={**base, "purpose": "x"}), 422, "Unknown purpose")
    assert_problem(api.get("/v1/check", params={**base, "aspect": "x"}), 422, "Unknown aspect")
    assert_problem(api.get("/v1/check", params={**base, "at": "2025-01-01T10:00"}), 422)
    assert_problem(api.get("/v1/check", params={"purpose": "ai-training"}), 422, "Invalid request")


def test_check_reflects_a_write_when_asked_for_its_position(api: Api) -> None:
    receipt = api.post("/v1/subjects/artist-4/grants", {"purpose": "data-mining"}).json()
    body = api.get(
        "/v1/check",
        params={
            "subject": "artist-4",
            "purpose": "data-mining",
            "min_position": receipt["position"],
        },
    ).json()
    assert body["allowed"] is True
    assert body["position"] >= receipt["position"]


def test_filter_answers_the_allowed_pairs_in_request_order(api: Api) -> None:
    for subject in ("s1", "s2"):
        api.post(f"/v1/subjects/{subject}/grants", {"purpose": "ai-training", "party": "*"})
    api.post(
        "/v1/subjects/s2/revocations",
        {"purpose": "ai-training", "party": "*", "content_ids": ["c2"]},
    )
    items = [
        {"subject": "s2", "content": "c1"},
        {"subject": "s3", "content": "c1"},
        {"subject": "s1", "content": "c9"},
        {"subject": "s2", "content": "c2"},
    ]
    last = api.post(
        "/v1/subjects/s2/revocations",
        {"purpose": "ai-training", "party": "*", "content_ids": ["c2"]},
    ).json()
    response = api.post(
        "/v1/filter",
        {
            "purpose": "ai-training",
            "party": "aurora-labs",
            "items": items,
            "min_position": last["position"],
        },
        role=Role.READER,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["allowed"] == [items[0], items[2]]
    assert body["position"] == api.position()


def test_filter_refuses_malformed_items_and_more_than_100k(api: Api) -> None:
    bad = {"purpose": "ai-training", "items": [{"subject": "s1"}]}
    assert_problem(api.post("/v1/filter", bad), 422, "Invalid request")
    spaced = {"purpose": "ai-training", "items": [{"subject": "s 1", "content": "c"}]}
    assert_problem(api.post("/v1/filter", spaced), 422, "Invalid identifier")
    too_many = {"purpose": "ai-training", "items": [{"subject": "s", "content": "c"}] * 100_001}
    body = assert_problem(api.post("/v1/filter", too_many), 422, "Invalid request")
    assert "100000" in body["detail"]


# One backend is enough here: the reader's speed on each is benchmarked, not tested.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_filter_takes_100k_items_in_one_request(api: Api) -> None:
    for n in range(20):
        last = api.post(
            f"/v1/subjects/artist-{n}/grants", {"purpose": "data-mining", "party": "*"}
        ).json()
    items = [{"subject": f"artist-{i % 40}", "content": f"track-{i}"} for i in range(100_000)]
    body = {
        "purpose": "data-mining",
        "party": "crawler-9",
        "items": items,
        "min_position": last["position"],
    }
    response = api.post("/v1/filter", body)
    assert response.status_code == 200, response.text
    allowed = response.json()["allowed"]
    assert len(allowed) == 50_000
    assert allowed[:2] == [items[0], items[1]]


def test_history_pages_by_limit_and_after(api: Api) -> None:
    publish_and_accept(api, "artist-5")
    for purpose in ("ai-training", "data-mining", "ai-inference", "personalization"):
        api.post("/v1/subjects/artist-5/grants", {"purpose": purpose})
    first = api.get("/v1/subjects/artist-5/history", params={"limit": 2}, role=Role.AUDITOR).json()
    assert first["subject"] == "artist-5"
    assert [e["type"] for e in first["events"]] == ["TermsAccepted", "ConsentGranted"]
    seen = first["events"]
    page = first
    while page["next"] is not None:
        page = api.get(
            "/v1/subjects/artist-5/history",
            params={"limit": 2, "after": page["next"]},
            role=Role.AUDITOR,
        ).json()
        seen += page["events"]
    assert len(seen) == 5
    whole = api.get("/v1/subjects/artist-5/history", role=Role.AUDITOR).json()
    assert whole["events"] == seen
    assert whole["next"] is None


def test_history_shows_auditors_the_evidence_until_erasure(api: Api) -> None:
    evidence = {"channel": "web", "method": "toggle", "email": "nova@example.org"}
    api.post("/v1/subjects/artist-6/grants", {"purpose": "ai-training", "evidence": evidence})
    events = api.get("/v1/subjects/artist-6/history", role=Role.AUDITOR).json()["events"]
    assert events[0]["evidence"] == evidence
    api.post("/v1/subjects/artist-6/erasure", {})
    events = api.get("/v1/subjects/artist-6/history", role=Role.AUDITOR).json()["events"]
    assert events[0]["evidence"] == {
        "channel": "web",
        "method": "toggle",
        "personal_data": {"erased": True},
    }
    assert events[-1]["type"] == "SubjectErased"


def test_history_of_an_unknown_subject_is_404_and_known_at_filters_it(api: Api) -> None:
    assert_problem(api.get("/v1/subjects/nobody/history"), 404, "Unknown subject")
    api.post("/v1/subjects/artist-7/grants", {"purpose": "ai-training"})
    past = api.get("/v1/subjects/artist-7/history", params={"known_at": "2000-01-01"}).json()
    assert past == {"subject": "artist-7", "events": [], "next": None}


# -------------------------------------------------------------- AI signals


def test_ai_signals_deny_everything_for_third_parties_by_default(api: Api) -> None:
    response = api.get("/v1/subjects/artist-8/content/track-1/ai-signals", role=Role.READER)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("x_robots_tag", "tdm", "training_mining", "position")} == {
        "x_robots_tag": "noai, noimageai",
        "tdm": {"tdm-reservation": 1, "tdm-policy": None},
        "training_mining": {
            "entries": {
                "cawg.ai_generative_training": {"use": "notAllowed"},
                "cawg.ai_training": {"use": "notAllowed"},
                "cawg.ai_inference": {"use": "notAllowed"},
                "cawg.data_mining": {"use": "notAllowed"},
            }
        },
        "position": api.position(),
    }
    assert response.headers["X-Robots-Tag"] == "noai, noimageai"
    assert response.headers["tdm-reservation"] == "1"
    assert "tdm-policy" not in response.headers


def test_ai_signals_follow_grants_to_any_third_party(api: Api) -> None:
    for purpose in ("ai-generative-training", "data-mining"):
        api.post(
            "/v1/subjects/artist-8/grants",
            {"purpose": purpose, "party": "*", "content_ids": ["track-1"]},
        )
    last = api.post(
        "/v1/subjects/artist-8/grants", {"purpose": "ai-training", "party": "aurora-labs"}
    ).json()
    response = api.get(
        "/v1/subjects/artist-8/content/track-1/ai-signals",
        params={"min_position": last["position"]},
    )
    body = response.json()
    assert body["x_robots_tag"] is None
    assert "X-Robots-Tag" not in response.headers
    assert body["tdm"] == {"tdm-reservation": 0, "tdm-policy": None}
    assert response.headers["tdm-reservation"] == "0"
    entries = body["training_mining"]["entries"]
    assert entries["cawg.ai_generative_training"] == {"use": "allowed"}
    assert entries["cawg.data_mining"] == {"use": "allowed"}
    assert entries["cawg.ai_training"] == {"use": "notAllowed"}  # a named party is not `*`
    other = api.get("/v1/subjects/artist-8/content/track-2/ai-signals").json()
    assert other["x_robots_tag"] == "noai, noimageai"


def test_ai_signals_as_html_are_meta_tags_with_the_same_headers(api: Api) -> None:
    response = api.get(
        "/v1/subjects/artist-9/content/track-1/ai-signals",
        headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["X-Robots-Tag"] == "noai, noimageai"
    assert response.headers["Vary"] == "Accept"
    html = response.text
    assert '<meta name="robots" content="noai, noimageai">' in html
    assert '<meta name="tdm-reservation" content="1">' in html
    assert '<meta name="cawg.ai_training" content="notAllowed">' in html


def test_ai_signals_announce_the_tdm_policy_while_rights_are_reserved(api: Api) -> None:
    api.services.settings = dataclasses.replace(
        api.services.settings, tdm_policy_url="https://example.org/tdm-policy.json"
    )
    response = api.get("/v1/subjects/artist-9/content/track-1/ai-signals")
    assert response.json()["tdm"]["tdm-policy"] == "https://example.org/tdm-policy.json"
    assert response.headers["tdm-policy"] == "https://example.org/tdm-policy.json"
    html = api.get(
        "/v1/subjects/artist-9/content/track-1/ai-signals", headers={"Accept": "text/html"}
    ).text
    assert '<meta name="tdm-policy" content="https://example.org/tdm-policy.json">' in html


# ------------------------------------------------------ probes, docs, problems


def test_probes_and_docs_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["position"] == api.position()
    assert isinstance(ready.json()["projection_lag"], int)
    schema = api.client.get("/openapi.json").json()
    assert "/v1/subjects/{subject}/grants" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert api.client.get("/docs").status_code == 200


def test_transparency_routes_serve_the_checkpoint_and_proofs(api: Api) -> None:
    for n in range(3):
        last = api.post(f"/v1/subjects/artist-{n}/grants", {"purpose": "ai-training"}).json()
    urls = {
        "checkpoint": "/v1/ledger/checkpoint",
        "inclusion": f"/v1/ledger/proofs/inclusion?position={last['position']}",
        "consistency": "/v1/ledger/proofs/consistency?first=1",
    }
    if getattr(api.services, "transparency", None) is None:
        for url in urls.values():
            assert_problem(api.get(url, role=Role.READER), 503, "Transparency log not available")
        return
    checkpoint = api.get(urls["checkpoint"], role=Role.READER).json()
    assert {"log_id", "tree_size", "root_hash", "timestamp", "public_key", "signature"} <= set(
        checkpoint
    )
    inclusion = api.get(urls["inclusion"], role=Role.READER).json()
    assert {"leaf_index", "tree_size", "audit_path"} <= set(inclusion)
    consistency = api.get(urls["consistency"], role=Role.READER)
    assert consistency.status_code == 200, consistency.text
    assert_problem(api.get("/v1/ledger/proofs/inclusion?position=999999"), 404)


def test_problems_carry_the_request_id_of_the_response(api: Api) -> None:
    response = api.client.get("/v1/check", headers={"X-Request-ID": "trace-123"})
    body = assert_problem(response, 401, "Not authenticated")
    assert response.headers["X-Request-ID"] == "trace-123" == body["request_id"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(api.get("/v1/nowhere"), 404)
    method = api.client.delete("/v1/terms", headers=api.auth())
    assert_problem(method, 405)
    huge = {"purpose": "ai-training", "evidence": {"note": "x" * (2 * 1024 * 1024)}}
    assert_problem(api.post("/v1/subjects/a/grants", huge), 413, "Request too large")


def test_requests_are_logged_as_json_with_request_id_never_the_key(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    try:
        capsys.readouterr()
        api.post(
            "/v1/subjects/artist-10/grants",
            {"purpose": "ai-training", "evidence": {"email": "x@example.org"}},
            headers={"X-Request-ID": "req-42"},
        )
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        structlog.reset_defaults()
    appended = next(line for line in lines if line["event"] == "event_appended")
    assert appended["request_id"] == "req-42"
    assert appended["subject"] == "artist-10"
    assert {"event_id", "position"} <= appended.keys()
    request = next(line for line in lines if line["event"] == "request")
    assert request["route"] == "/v1/subjects/{subject}/grants"
    assert request["status"] == 201
    text = json.dumps(lines)
    assert api.keys[Role.ADMIN] not in text
    assert "x@example.org" not in text
