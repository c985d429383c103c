"""BRIEF §2.1 over HTTP, on SQLite and PostgreSQL: registrations, agents, models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.api_keys import Role
from services.bootstrap import Services
from tests.integration.api_support import Api, assert_problem, running_api


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def test_registered_work_is_denied_once_its_featured_singer_revokes(api: Api) -> None:
    grant = {"purpose": "ai-training", "party": "aurora-labs"}
    assert api.post("/v1/subjects/owner/grants", grant, Role.WRITER).status_code == 201
    created = api.post(
        "/v1/content/t1/registrations",
        {
            "owner": "owner",
            "contributors": [{"subject": "singer", "aspects": ["voice"]}],
            "isrc": "USS1Z9900001",
        },
        Role.WRITER,
    )
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"event_id", "position", "recorded_at"}
    found = api.get("/v1/content?isrc=US-S1Z-99-00001", Role.READER)
    assert found.json() == {
        "content_id": "t1",
        "owner": "owner",
        "isrc": "USS1Z9900001",
        "iswc": None,
    }
    query = "/v1/check?subject=owner&purpose=ai-training&party=aurora-labs&content=t1"
    denied = api.get(query, Role.READER).json()
    assert denied["allowed"] is False
    assert denied["basis"] == "contributor-denied"
    assert (denied["contributor"], denied["contributor_basis"]) == ("singer", "opt-in-required")
    api.post("/v1/subjects/singer/grants", {**grant, "aspect": "voice"}, Role.WRITER)
    allowed = api.get(query, Role.READER).json()
    assert (allowed["allowed"], allowed["conditions"]) == (True, [])
    assert "contributor" not in allowed
    listed = api.post(
        "/v1/filter",
        {**grant, "items": [{"subject": "owner", "content": "t1"}]},
        Role.READER,
    )
    assert listed.json()["allowed"] == [{"subject": "owner", "content": "t1"}]


def test_registration_for_another_owner_is_409_and_writes_nothing(api: Api) -> None:
    api.post("/v1/content/t1/registrations", {"owner": "first"}, Role.WRITER)
    before = api.position()
    answer = api.post("/v1/content/t1/registrations", {"owner": "second"}, Role.WRITER)
    assert_problem(answer, 409)
    assert api.position() == before


def test_agent_without_authority_is_403_and_with_authority_may_write(api: Api) -> None:
    body = {"purpose": "ai-training", "actor": "acme-label"}
    before = api.position()
    assert_problem(api.post("/v1/subjects/artist/grants", body, Role.WRITER), 403)
    assert api.position() == before
    authority = {"agent": "acme-label", "purposes": ["ai-training"]}
    assert api.post("/v1/subjects/artist/authorities", authority, Role.WRITER).status_code == 201
    assert api.post("/v1/subjects/artist/grants", body, Role.WRITER).status_code == 201
    ended = api.post("/v1/subjects/artist/authorities/acme-label/revocation", None, Role.WRITER)
    assert ended.status_code == 201
    again = api.post("/v1/subjects/artist/authorities/acme-label/revocation", None, Role.WRITER)
    assert_problem(again, 404)
    history = api.get("/v1/subjects/artist/history", Role.AUDITOR).json()
    grants = [e for e in history["events"] if e["type"] == "ConsentGranted"]
    assert [g["actor"] for g in grants] == ["acme-label"]


def test_model_and_conditions_reach_check_and_filter(api: Api) -> None:
    body = {
        "purpose": "ai-generative-training",
        "party": "aurora-labs",
        "model": "melody-v2",
        "conditions": ["credit the artist"],
        "content_ids": ["t1"],
    }
    assert api.post("/v1/subjects/artist/grants", body, Role.WRITER).status_code == 201
    base = "/v1/check?subject=artist&purpose=ai-generative-training&party=aurora-labs&content=t1"
    named = api.get(base + "&model=melody-v2", Role.READER).json()
    assert (named["allowed"], named["conditions"]) == (True, ["credit the artist"])
    assert api.get(base, Role.READER).json()["allowed"] is False
    items = [{"subject": "artist", "content": "t1"}]
    ask = {"purpose": "ai-generative-training", "party": "aurora-labs", "items": items}
    assert api.post("/v1/filter", {**ask, "model": "melody-v2"}, Role.READER).json()["allowed"]
    assert api.post("/v1/filter", ask, Role.READER).json()["allowed"] == []


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/content/t1/registrations", {"owner": "o", "isrc": "nope"}),
        ("/v1/content/t1/registrations", {"owner": "o", "iswc": "T-034.524.680-9"}),
        (
            "/v1/content/t1/registrations",
            {"owner": "o", "contributors": [{"subject": "o", "aspects": ["voice"]}]},
        ),
        (
            "/v1/content/t1/registrations",
            {"owner": "o", "contributors": [{"subject": "s", "aspects": ["all"]}]},
        ),
        ("/v1/subjects/a/authorities", {"agent": "platform"}),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "model": "Bad Model"}),
        ("/v1/subjects/a/grants", {"purpose": "ai-training", "conditions": ["x" * 501]}),
    ],
)
def test_bad_rights_input_is_422_and_writes_nothing(api: Api, url: str, body: dict) -> None:  # type: ignore[type-arg]
    before = api.position()
    assert_problem(api.post(url, body, Role.WRITER), 422)
    assert api.position() == before
