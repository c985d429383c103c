"""Hostile input gets a clear 4xx problem, never a 5xx, and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from services.api_keys import Role
from services.bootstrap import Services
from tests.integration.api_support import Api, running_api

pytestmark = pytest.mark.timeout(120)

GRANTS = "/v1/subjects/artist-1/grants"
PREFIX = b'{"purpose": "ai-training", "evidence": '
NESTED_ARRAYS = PREFIX + b'{"note": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
NESTED_OBJECTS = PREFIX + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}"
HUGE_NUMBER = PREFIX + b'{"n": 1' + b"0" * 400 + b"}}"


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def raw_post(api: Api, url: str, content: bytes, role: Role = Role.ADMIN) -> object:
    headers = api.auth(role, **{"Content-Type": "application/json"})
    return api.client.post(url, content=content, headers=headers)


def assert_refused(api: Api, response: object, before: int, statuses: set[int]) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status in statuses, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert api.position() == before, "a refused request wrote to the ledger"


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("deeply nested arrays", NESTED_ARRAYS),
        ("deeply nested objects", NESTED_OBJECTS),
        ("invalid UTF-8", b'{"purpose": "ai-training\xff\xfe"}'),
        ("lone surrogate escape", b'{"purpose": "ai-training", "reason": "\\ud800"}'),
        ("NUL in the purpose", b'{"purpose": "ai-training\\u0000"}'),
        ("truncated JSON", b'{"purpose": "ai-tr'),
        ("not an object", b"[1, 2, 3]"),
        ("a number too large", HUGE_NUMBER),
        ("empty body", b""),
    ],
)  # fmt: skip
def test_a_hostile_write_body_is_refused_with_a_4xx_problem_and_writes_nothing(
    api: Api, name: str, body: bytes
) -> None:
    before = api.position()
    assert_refused(api, raw_post(api, GRANTS, body), before, {400, 413, 422})


@pytest.mark.parametrize(
    "subject", ["nul\x00byte", "line\nbreak", "c1\x85control", "x" * 300, "white space"]
)
def test_a_hostile_subject_in_the_path_is_refused(api: Api, subject: str) -> None:
    before = api.position()
    url = f"/v1/subjects/{quote(subject, safe='')}/grants"
    response = api.client.post(url, json={"purpose": "ai-training"}, headers=api.auth())
    assert_refused(api, response, before, {404, 422})


def test_a_filter_batch_over_the_limit_is_refused_before_any_answer(api: Api) -> None:
    items = [{"subject": f"s{n}", "content": "t"} for n in range(100_001)]
    response = api.post("/v1/filter", {"purpose": "ai-training", "items": items}, Role.READER)
    assert response.status_code in {413, 422}, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_oversize_body_declared_up_front_is_refused_with_413(api: Api) -> None:
    before = api.position()
    body = b'{"purpose": "ai-training", "evidence": {"note": "' + b"x" * (3 << 20) + b'"}}'
    assert_refused(api, raw_post(api, GRANTS, body), before, {413})


def test_hostile_query_strings_on_check_are_refused_with_422(api: Api) -> None:
    for params in (
        {"subject": "a\x00", "purpose": "ai-training"},
        {"subject": "a", "purpose": "ai-training", "at": "june 2024"},
        {"subject": "a", "purpose": "ai-training", "at": "2024-13-45T99:00:00Z"},
        {"subject": "a", "purpose": "ai-training", "known_at": "9" * 5000},
        {"subject": "a", "purpose": "no-such-purpose"},
    ):
        response = api.get("/v1/check", Role.READER, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("route", ["/v1/subjects/artist-1/erasure", GRANTS])
def test_a_non_json_body_with_an_idempotency_key_is_422_and_writes_nothing(
    api: Api, route: str
) -> None:
    before = api.position()
    headers = {**api.auth(), "Content-Type": "application/json", "Idempotency-Key": "k-1"}
    response = api.client.post(route, content=b"\xff\xfe not json", headers=headers)
    assert_refused(api, response, before, {422})


@pytest.mark.parametrize(
    "params", [{"prefix": "\u00fa\x00"}, {"prefix": "a b"}, {"after": "x\x00"}]
)
def test_a_subject_search_with_control_characters_is_422(api: Api, params: dict[str, str]) -> None:
    response = api.get("/v1/subjects", Role.AUDITOR, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
