"""HTTP times are aware datetimes, parsed by the ledger's one rule, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.bootstrap import Services
from tests.integration.api_support import Api, assert_problem, running_api


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def test_a_bare_date_means_midnight_utc_in_bodies_and_queries(api: Api) -> None:
    grant = api.post(
        "/v1/subjects/artist-1/grants",
        {"purpose": "data-mining", "effective_at": "2024-06-01", "expires_at": "2024-07-01"},
    )
    assert grant.status_code == 201, grant.text
    events = api.get("/v1/subjects/artist-1/history").json()["events"]
    assert events[-1]["effective_at"] == "2024-06-01T00:00:00.000000Z"
    assert events[-1]["expires_at"] == "2024-07-01T00:00:00.000000Z"
    at = {"subject": "artist-1", "purpose": "data-mining"}
    assert api.get("/v1/check", params={**at, "at": "2024-06-01"}).json()["allowed"] is True
    assert api.get("/v1/check", params={**at, "at": "2024-07-01"}).json()["allowed"] is False


def test_an_offset_is_the_same_instant_in_utc(api: Api) -> None:
    api.post(
        "/v1/subjects/artist-2/grants",
        {"purpose": "data-mining", "effective_at": "2024-06-01T02:00:00+02:00"},
    )
    events = api.get("/v1/subjects/artist-2/history").json()["events"]
    assert events[-1]["effective_at"] == "2024-06-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("time", "says"),
    [
        ("2024-06-01T12:00:00", "has no zone"),
        ("june 2024", "is not an ISO 8601 instant"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_a_time_the_rule_refuses_is_an_invalid_time_problem_and_nothing_is_written(
    api: Api, time: str, says: str
) -> None:
    before = api.position()
    body = assert_problem(
        api.post("/v1/subjects/a/grants", {"purpose": "data-mining", "effective_at": time}),
        422,
        "Invalid time",
    )
    assert body["detail"].startswith("body.effective_at: ")
    assert says in body["detail"]
    query = {"subject": "a", "purpose": "data-mining", "known_at": time}
    assert says in assert_problem(api.get("/v1/check", params=query), 422, "Invalid time")["detail"]
    assert api.position() == before


def test_a_number_is_not_a_time(api: Api) -> None:
    body = {"purpose": "data-mining", "effective_at": 1717200000}
    assert_problem(api.post("/v1/subjects/a/grants", body), 422, "Invalid request")


def test_the_schema_documents_times_as_date_times(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    effective_at = schemas["GrantRequest"]["properties"]["effective_at"]
    assert {"type": "string", "format": "date-time"} in effective_at["anyOf"]
