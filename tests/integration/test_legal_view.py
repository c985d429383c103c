"""The legal team's reads over HTTP, on SQLite and PostgreSQL: subject search, the overview
(chart bands and matrix), `min_position` beyond the head, and the offline API docs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.instants import format_instant, parse_instant
from services.api_keys import Role
from services.bootstrap import Services
from services.demo import load_demo
from tests.integration.api_support import Api, assert_problem, running_api

DEMO_ARTISTS = [
    "artist-echo",
    "artist-ghost",
    "artist-lumen",
    "artist-nova",
    "artist-orion",
    "artist-vega",
]


@pytest.fixture
def demo_api(services: Services) -> Iterator[Api]:
    load_demo(services.ledger)
    with running_api(services) as api:
        yield api


def band_at(lane: dict[str, object], instant: str) -> dict[str, object]:
    """Return the band of a lane that holds at `instant` (bands are [from, to))."""
    at = parse_instant(instant)
    bands = lane["bands"]
    assert isinstance(bands, list)
    for band in bands:
        if parse_instant(band["from"]) <= at < parse_instant(band["to"]):
            return dict(band)
    raise AssertionError(f"no band of {lane['key']} holds at {instant}")


def test_subject_search_finds_demo_artists_by_prefix_in_pages(demo_api: Api) -> None:
    every = demo_api.get("/v1/subjects", role=Role.AUDITOR, params={"prefix": "artist-"}).json()
    assert every == {"subjects": DEMO_ARTISTS, "next": None}
    first = demo_api.get("/v1/subjects", params={"prefix": "artist-", "limit": 4}).json()
    assert first == {"subjects": DEMO_ARTISTS[:4], "next": "artist-nova"}
    rest = demo_api.get(
        "/v1/subjects", params={"prefix": "artist-", "limit": 4, "after": first["next"]}
    ).json()
    assert rest == {"subjects": DEMO_ARTISTS[4:], "next": None}
    assert demo_api.get("/v1/subjects", params={"prefix": "artist-n"}).json()["subjects"] == [
        "artist-nova"
    ]
    assert demo_api.get("/v1/subjects", params={"prefix": "nobody"}).json() == {
        "subjects": [],
        "next": None,
    }


def test_subject_search_is_for_auditors_and_admins_only(demo_api: Api) -> None:
    assert_problem(demo_api.get("/v1/subjects", role=Role.READER), 403)
    assert_problem(demo_api.get("/v1/subjects", role=Role.WRITER), 403)
    assert_problem(demo_api.client.get("/v1/subjects"), 401)
    assert_problem(demo_api.get("/v1/subjects", params={"limit": 0}), 422)


def test_overview_of_an_unknown_subject_is_a_404_not_a_verdict(demo_api: Api) -> None:
    body = assert_problem(demo_api.get("/v1/subjects/nobody/overview"), 404, "Unknown subject")
    assert "nobody" in body["detail"]


def test_overview_and_dossier_of_a_subject_on_a_ledger_without_terms_answer_not_fail(
    services: Services,
) -> None:
    # Found by the abuse suite: with no terms ever published the axis start was
    # `min(first_event)` of a lone datetime, a TypeError and a 500.
    with running_api(services) as api:
        granted = api.post("/v1/subjects/loner/grants", {"purpose": "ai-training"})
        assert granted.status_code == 201, granted.text
        overview = api.get("/v1/subjects/loner/overview")
        assert overview.status_code == 200, overview.text
        assert overview.json()["views"][0]["lanes"]
        dossier = api.get("/v1/subjects/loner/dossier")
        assert dossier.status_code == 200, dossier.text


def test_overview_bands_follow_the_terms_and_the_opt_out(demo_api: Api) -> None:
    body = demo_api.get("/v1/subjects/artist-echo/overview", params={"at": "2024-06-01"}).json()
    lanes = {lane["key"]: lane for lane in body["views"][0]["lanes"]}
    training = lanes["ai-training|platform||all"]
    assert band_at(training, "2024-02-20")["basis"] == "terms-default"
    assert band_at(training, "2024-02-20")["allowed"] is True
    assert band_at(training, "2024-06-01") | {"event_ids": []} == band_at(
        training, "2025-09-01"
    ) | {"event_ids": []}
    assert band_at(training, "2024-06-01")["basis"] == "explicit-revocation"
    voice = lanes["ai-generative-training|platform||voice"]
    assert band_at(voice, "2025-05-01")["allowed"] is False
    assert band_at(voice, "2025-07-01")["allowed"] is True
    assert [t["version"] for t in body["views"][0]["terms"]] == ["2024-02", "2025-05"]
    assert [p["version"] for p in body["terms_publications"]] == ["2024-02", "2025-05"]
    assert len(body["views"]) == 1  # K not given: one view, as known now


def test_overview_as_known_before_a_void_shows_what_the_void_changed(demo_api: Api) -> None:
    nova = demo_api.services.ledger.subject_entries("artist-nova")
    mistaken = next(e for e in nova if type(e.event).__name__ == "ConsentGranted")
    before_void = format_instant(mistaken.event.recorded_at + timedelta(microseconds=1))
    body = demo_api.get(
        "/v1/subjects/artist-nova/overview", params={"at": "2025-07-01", "known_at": before_void}
    ).json()
    now, then = body["views"]
    key = "ai-generative-training|platform||all"
    lane_now = next(lane for lane in now["lanes"] if lane["key"] == key)
    lane_then = next(lane for lane in then["lanes"] if lane["key"] == key)
    assert band_at(lane_now, "2025-07-01")["allowed"] is False
    assert band_at(lane_then, "2025-07-01")["allowed"] is True
    assert str(mistaken.event.event_id) in now["voided_event_ids"]
    assert str(mistaken.event.event_id) not in then["voided_event_ids"]


def test_matrix_matches_check_for_every_cell(demo_api: Api) -> None:
    for subject in DEMO_ARTISTS:
        for at in ("2024-06-01", "2025-09-01"):
            matrix = demo_api.get(f"/v1/subjects/{subject}/overview", params={"at": at}).json()[
                "matrix"
            ]
            assert len(matrix["cells"]) == len(matrix["purposes"]) * len(matrix["parties"])
            for cell in matrix["cells"]:
                answer = demo_api.get(
                    "/v1/check",
                    role=Role.READER,
                    params={
                        "subject": subject,
                        "purpose": cell["purpose"],
                        "party": cell["party"],
                        "at": at,
                        "known_at": matrix["known_at"],
                    },
                ).json()
                assert {k: cell[k] for k in answer} == answer, (subject, at, cell)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(day=st.integers(min_value=0, max_value=3 * 365))
def test_every_band_agrees_with_check_on_any_day(demo_api: Api, day: int) -> None:
    instant = format_instant(parse_instant("2023-11-01") + timedelta(days=day, hours=7))
    body = demo_api.get("/v1/subjects/artist-vega/overview").json()
    for lane in body["views"][0]["lanes"]:
        if parse_instant(instant) < parse_instant(body["first_event_at"]):
            continue
        band = band_at(lane, instant)
        params = {"subject": "artist-vega", "purpose": lane["purpose"], "party": lane["party"]}
        params |= {"aspect": lane["aspect"], "at": instant}
        if lane["content"]:
            params["content"] = lane["content"]
        answer = demo_api.get("/v1/check", params=params).json()
        assert (band["allowed"], band["basis"]) == (answer["allowed"], answer["basis"]), lane


def test_min_position_beyond_the_head_is_a_409_problem(demo_api: Api) -> None:
    head = demo_api.position()
    body = assert_problem(
        demo_api.get(
            "/v1/check",
            params={"subject": "artist-echo", "purpose": "ai-training", "min_position": head + 5},
        ),
        409,
        "Position not reached",
    )
    assert str(head + 5) in body["detail"]
    assert str(head) in body["detail"]
    filtered = demo_api.post(
        "/v1/filter",
        {"purpose": "ai-training", "min_position": head + 1, "items": []},
    )
    assert_problem(filtered, 409, "Position not reached")
    at_head = demo_api.get(
        "/v1/check",
        params={"subject": "artist-echo", "purpose": "ai-training", "min_position": head},
    )
    assert at_head.status_code == 200
    assert at_head.json()["position"] == head
    assert demo_api.position() == head  # nothing written


def test_ai_signals_name_the_position_they_reflect(demo_api: Api) -> None:
    body = demo_api.get("/v1/subjects/artist-vega/content/any/ai-signals").json()
    assert body["position"] == demo_api.position()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_and_redoc_load_their_assets_from_this_server(demo_api: Api) -> None:
    for path in ("/docs", "/redoc"):
        page = demo_api.client.get(path)
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "https://" not in page.text
    swagger = demo_api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert swagger.status_code == 200
    assert len(swagger.content) > 100_000
    assert demo_api.client.get("/docs-assets/redoc.standalone.js").status_code == 200
