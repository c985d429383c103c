"""Abuse: every route in /openapi.json refuses strangers; keys are rate limited.

The routes are enumerated from the app's own OpenAPI document, so a route added later
is covered without editing this file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.api_keys import KEY_PREFIX, Role
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.integration.api_support import Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(120)

PUBLIC_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/"}
_PARAM = re.compile(r"\{([^}]+)\}")


@pytest.fixture(scope="module")
def abuse_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("abuse")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", data_dir=folder / "data")
    )
    try:
        with running_api(services) as api:
            yield api
    finally:
        services.close()


def protected_operations(api: Api) -> list[tuple[str, str]]:
    """Return (method, path) of every operation the OpenAPI document lists, minus probes."""
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"} and path not in PUBLIC_PATHS
        and not path.startswith("/ui")
    ]  # fmt: skip
    assert found, "the OpenAPI document lists no protected operation"
    return found


def filled(path: str) -> str:
    return _PARAM.sub(
        lambda m: "x1" if m.group(1) != "event_id" else "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        path,
    )


STRANGERS = {
    "no key": {},
    "forged key": {"Authorization": f"Bearer {KEY_PREFIX}{secrets.token_urlsafe(32)}"},
    "malformed key": {"Authorization": "Bearer " + "x" * 5000},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
}


@pytest.mark.parametrize("stranger", list(STRANGERS))
def test_every_route_in_openapi_refuses_a_caller_without_a_valid_key(
    abuse_api: Api, stranger: str
) -> None:
    wrong: list[str] = []
    for method, path in protected_operations(abuse_api):
        response = abuse_api.client.request(
            method, filled(path), json={}, headers=STRANGERS[stranger]
        )
        if response.status_code != 401 or not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong, f"routes that let a stranger ({stranger}) past: {wrong}"


def test_every_write_route_in_openapi_refuses_a_reader_key(abuse_api: Api) -> None:
    wrong = []
    for method, path in protected_operations(abuse_api):
        if method != "POST" or path in {"/v1/filter"} or "lookup" in path:
            continue
        response = abuse_api.client.request(
            method, filled(path), json={}, headers=abuse_api.auth(Role.READER)
        )
        if response.status_code != 403:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong, f"write routes a reader key may use: {wrong}"


@pytest.fixture
def limited_services(tmp_path: Path) -> Iterator[Services]:
    services = bootstrap(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            data_dir=tmp_path / "data",
            rate_limit_per_second=0.5,
            rate_limit_burst=5,
        )
    )
    yield services
    services.close()


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    limited_services: Services,
) -> None:
    with running_api(limited_services) as api:
        params = {"subject": "artist-1", "purpose": "ai-training"}
        statuses = [api.get("/v1/check", Role.READER, params=params).status_code for _ in range(5)]
        assert statuses == [200] * 5
        over = api.get("/v1/check", Role.READER, params=params)
        body = assert_problem(over, 429, "Too many requests")
        assert "test-reader" in body["detail"]
        assert int(over.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert api.get("/v1/check", Role.AUDITOR, params=params).status_code == 200


def test_a_rate_limited_write_writes_nothing(limited_services: Services) -> None:
    with running_api(limited_services) as api:
        for _n in range(5):
            response = api.post("/v1/subjects/a/grants", {"purpose": "ai-training"}, Role.WRITER)
            assert response.status_code == 201, response.text
        before = api.position()
        over = api.post("/v1/subjects/a/grants", {"purpose": "ai-training"}, Role.WRITER)
        assert_problem(over, 429)
        assert api.position() == before
