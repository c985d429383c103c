"""AI signals over HTTP: every vocabulary per page, site-wide files, bulk lookup.

On SQLite and PostgreSQL, through the real app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from requests.structures import CaseInsensitiveDict

from projections.signals.drift import compare_page, compare_site, parse_tdmrep, robots_rules
from projections.signals.service import MAX_LOOKUP_URLS, NO_PREFERENCE_KNOWN
from projections.signals.urls import UrlTemplate
from services.api_keys import Role
from services.bootstrap import Services
from tests.integration.api_support import Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(120)

TEMPLATE = "https://music.example/{subject}/{content}"


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    services.settings = dataclasses.replace(services.settings, content_url_template=TEMPLATE)
    with running_api(services) as client:
        yield client


def write(api: Api, route: str, subject: str, purpose: str, *contents: str) -> int:
    body: dict[str, object] = {"purpose": purpose, "party": "*"}
    if contents:
        body["content_ids"] = list(contents)
    response = api.post(f"/v1/subjects/{subject}/{route}", body, role=Role.WRITER)
    assert response.status_code == 201, response.text
    return int(response.json()["position"])


def grant(api: Api, subject: str, purpose: str, *contents: str) -> int:
    return write(api, "grants", subject, purpose, *contents)


def revoke(api: Api, subject: str, purpose: str, *contents: str) -> int:
    return write(api, "revocations", subject, purpose, *contents)


def page(api: Api, subject: str, content: str) -> object:
    return api.get(f"/v1/subjects/{subject}/content/{content}/ai-signals", role=Role.READER)


def test_one_revocation_changes_every_vocabulary_of_a_page_at_once(api: Api) -> None:
    for purpose in ("ai-generative-training", "ai-training", "ai-inference", "data-mining"):
        grant(api, "artist-1", purpose)
    before = page(api, "artist-1", "track-1")
    revoke(api, "artist-1", "ai-generative-training")
    after = page(api, "artist-1", "track-1")
    assert before.headers["Content-Usage"] == "train-ai=y"  # type: ignore[attr-defined]
    assert after.headers["Content-Usage"] == "train-ai=n"  # type: ignore[attr-defined]
    assert before.headers["Content-Signal"] == "ai-train=yes, ai-input=yes"  # type: ignore[attr-defined]
    assert after.headers["Content-Signal"] == "ai-train=no, ai-input=yes"  # type: ignore[attr-defined]
    assert "X-Robots-Tag" not in before.headers  # type: ignore[attr-defined]
    assert after.headers["X-Robots-Tag"] == "noai, noimageai"  # type: ignore[attr-defined]
    body = after.json()  # type: ignore[attr-defined]
    assert body["training_mining"]["entries"]["cawg.ai_generative_training"] == {
        "use": "notAllowed"
    }
    assert body["rsl"] == {"permits": ["ai-input"], "prohibits": ["ai-train"]}
    assert body["content_usage"] == "train-ai=n"
    assert body["vocabularies"]["rsl"] == "rsl-1.0"


def test_site_wide_files_agree_with_every_page_s_headers(api: Api) -> None:
    grant(api, "artist-1", "ai-training")
    grant(api, "artist-1", "ai-generative-training")
    revoke(api, "artist-1", "ai-training", "track-2")
    grant(api, "artist-2", "data-mining", "track-9")
    robots = api.get("/v1/ai-signals/robots.txt", role=Role.READER)
    tdmrep = api.get("/v1/ai-signals/tdmrep.json", role=Role.READER)
    rsl = api.get("/v1/ai-signals/rsl.xml", role=Role.READER)
    assert robots.status_code == tdmrep.status_code == rsl.status_code == 200
    assert robots.headers["content-type"].startswith("text/plain")
    assert tdmrep.headers["content-type"].startswith("application/json")
    assert rsl.headers["content-type"].startswith("application/rsl+xml")
    assert "Content-Usage: /artist-1/track-2$ train-ai=n" in robots.text
    assert "Content-Usage: /artist-1/ train-ai=y" in robots.text
    assert "License: https://music.example/rsl.xml" in robots.text
    rules, entries = robots_rules(robots.text), parse_tdmrep(tdmrep.content)
    template = UrlTemplate.parse(TEMPLATE)
    service = api.services.signals
    pages = [
        ("artist-1", "track-1"),
        ("artist-1", "track-2"),
        ("artist-2", "track-9"),
        ("artist-2", "track-1"),
        ("artist-3", "x"),
    ]
    for subject, content in pages:
        served = page(api, subject, content)
        expected = service.page(subject, content).signals
        url = template.url(subject, content)
        assert compare_page(url, served.headers, "", expected) == []  # type: ignore[attr-defined]
        path = template.path(subject, content)
        assert compare_site(url, path, rules, entries, expected) == [], url


def test_site_wide_files_carry_an_etag_and_answer_304_until_the_ledger_changes(api: Api) -> None:
    grant(api, "artist-1", "ai-training")
    first = api.get("/v1/ai-signals/robots.txt", role=Role.READER)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"')
    assert len(etag) == 66
    assert modified.endswith("GMT")
    again = api.get("/v1/ai-signals/robots.txt", role=Role.READER, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    since = api.get(
        "/v1/ai-signals/robots.txt", role=Role.READER, headers={"If-Modified-Since": modified}
    )
    assert since.status_code == 304
    revoke(api, "artist-1", "ai-training")
    changed = api.get(
        "/v1/ai-signals/robots.txt", role=Role.READER, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_the_site_wide_files_need_a_reader_key(api: Api) -> None:
    assert_problem(api.client.get("/v1/ai-signals/robots.txt"), 401)
    assert_problem(api.get("/v1/ai-signals/tdmrep.json", role=Role.WRITER), 403)


def test_bulk_lookup_answers_each_url_and_unknown_ones_as_no_preference_known(api: Api) -> None:
    grant(api, "artist-1", "ai-training", "track-1")
    urls = [
        "https://music.example/artist-1/track-1",
        "https://music.example/artist-1/",
        "https://elsewhere.example/artist-1/track-1",
        "https://music.example/artist-1/track-1/credits",
    ]
    response = api.post("/v1/ai-signals/lookup", {"urls": urls}, role=Role.READER)
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["url"] for r in results] == urls
    assert results[0]["known"] is True
    assert (results[0]["subject"], results[0]["content"]) == ("artist-1", "track-1")
    assert results[0]["decisions"]["ai-training"]["allowed"] is True
    assert results[0]["decisions"]["ai-training"]["basis"] == "explicit-grant"
    assert results[0]["signals"]["content_usage"] == "train-ai=n"  # generative still denied
    assert results[0]["signals"]["training_mining"]["entries"]["cawg.ai_training"] == {
        "use": "allowed"
    }
    assert results[1]["content"] is None
    assert results[1]["decisions"]["ai-training"]["basis"] == "opt-in-required"
    for unknown in results[2:]:
        assert unknown == {"url": unknown["url"], "known": False, "status": NO_PREFERENCE_KNOWN}
    assert body["vocabularies"]["aipref"].startswith("draft-ietf-aipref")
    assert body["position"] == api.position()


def test_a_lookup_over_the_limit_or_with_a_malformed_url_is_refused_whole(api: Api) -> None:
    too_many = ["https://music.example/a/b"] * (MAX_LOOKUP_URLS + 1)
    body = assert_problem(api.post("/v1/ai-signals/lookup", {"urls": too_many}), 422)
    assert "10000" in body["detail"]
    body = assert_problem(
        api.post("/v1/ai-signals/lookup", {"urls": ["https://music.example/a/b", "not a url"]}),
        422,
    )
    assert "urls[1]" in body["detail"]


def test_a_lookup_of_ten_thousand_urls_is_answered(api: Api) -> None:
    urls = [f"https://music.example/artist-{i % 97}/track-{i}" for i in range(MAX_LOOKUP_URLS)]
    response = api.post("/v1/ai-signals/lookup", {"urls": urls}, role=Role.READER)
    assert response.status_code == 200
    assert len(response.json()["results"]) == MAX_LOOKUP_URLS


def test_without_a_url_template_the_site_wide_answers_are_404_problems(services: Services) -> None:
    with running_api(services) as api:
        body = assert_problem(api.get("/v1/ai-signals/robots.txt"), 404)
        assert "LEDGER_CONTENT_URL_TEMPLATE" in body["detail"]
        assert_problem(api.post("/v1/ai-signals/lookup", {"urls": []}), 404)


def test_datadiligence_reads_the_page_headers_as_the_ledger_means_them(api: Api) -> None:
    from datadiligence.rules import TDMRepHeader, XRobotsTagHeader

    grant(api, "artist-1", "ai-generative-training", "track-1")
    grant(api, "artist-1", "data-mining", "track-1")
    allowed = CaseInsensitiveDict(page(api, "artist-1", "track-1").headers)  # type: ignore[attr-defined]
    denied = CaseInsensitiveDict(page(api, "artist-1", "track-2").headers)  # type: ignore[attr-defined]
    assert XRobotsTagHeader().is_allowed(headers=allowed)
    assert TDMRepHeader().is_allowed(headers=allowed)
    assert not XRobotsTagHeader().is_allowed(headers=denied)
    assert not TDMRepHeader().is_allowed(headers=denied)
