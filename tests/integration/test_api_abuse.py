"""Abuse: every route in /openapi.json refuses strangers, wrong roles and revoked keys;
keys are rate limited.

The routes are enumerated from the app's own OpenAPI document, so a route added later
is covered without editing this file (or, for the role sweep, fails until its access
is declared in ROUTE_ACCESS: the matrix of services/http/auth.py, stated as the spec).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.api_keys import KEY_PREFIX, Role
from services.bootstrap import Services, bootstrap
from services.http.auth import CACHE_SECONDS, Access
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


ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/v1/terms"): Access.ADMINISTER,
    ("POST", "/v1/subjects/{subject}/terms-acceptances"): Access.RECORD,
    ("POST", "/v1/subjects/{subject}/grants"): Access.RECORD,
    ("POST", "/v1/subjects/{subject}/revocations"): Access.RECORD,
    ("POST", "/v1/events/{event_id}/void"): Access.RECORD,
    ("POST", "/v1/subjects/{subject}/erasure"): Access.ADMINISTER,
    ("GET", "/v1/check"): Access.READ,
    ("POST", "/v1/filter"): Access.READ,
    ("GET", "/v1/subjects/{subject}/content/{content}/ai-signals"): Access.READ,
    ("POST", "/v1/content/{content}/registrations"): Access.RECORD,
    ("GET", "/v1/content"): Access.READ,
    ("POST", "/v1/subjects/{subject}/authorities"): Access.RECORD,
    ("POST", "/v1/subjects/{subject}/authorities/{agent}/revocation"): Access.RECORD,
    ("GET", "/v1/events/{event_id}/receipt"): Access.AUDIT,
    ("GET", "/v1/ai-signals/robots.txt"): Access.READ,
    ("GET", "/v1/ai-signals/tdmrep.json"): Access.READ,
    ("GET", "/v1/ai-signals/rsl.xml"): Access.READ,
    ("POST", "/v1/ai-signals/lookup"): Access.READ,
    ("GET", "/v1/subjects/{subject}/history"): Access.AUDIT,
    ("GET", "/v1/ledger/checkpoint"): Access.READ,
    ("GET", "/v1/ledger/proofs/inclusion"): Access.READ,
    ("GET", "/v1/ledger/proofs/consistency"): Access.READ,
    ("GET", "/v1/subjects/{subject}/dossier"): Access.AUDIT,
    ("GET", "/v1/subjects/{subject}/dossier.pdf"): Access.AUDIT,
    ("GET", "/v1/subjects"): Access.AUDIT,
    ("GET", "/v1/subjects/{subject}/overview"): Access.AUDIT,
    ("POST", "/v1/snapshots"): Access.DATA,
    ("GET", "/v1/snapshots/{snapshot_id}/files/{name}"): Access.READ,
    ("POST", "/v1/datasets"): Access.DATA,
    ("GET", "/v1/datasets/{name}"): Access.READ,
    ("GET", "/v1/datasets/{name}/impacts"): Access.READ,
    ("GET", "/v1/ledger/tiles/checkpoint"): Access.READ,
    ("GET", "/v1/ledger/tiles/tile/entries/{rest}"): Access.READ,
    ("GET", "/v1/ledger/tiles/tile/{level}/{rest}"): Access.READ,
}
"""The access each route needs (services/http/auth.py's table); a new route must be added."""


def test_every_route_in_openapi_refuses_each_role_lacking_its_access_and_admits_the_others(
    abuse_api: Api,
) -> None:
    operations = protected_operations(abuse_api)
    undeclared = [op for op in operations if op not in ROUTE_ACCESS]
    assert not undeclared, f"declare the access of these routes in ROUTE_ACCESS: {undeclared}"
    refused_wrongly, admitted_wrongly = [], []
    for method, path in operations:
        access = ROUTE_ACCESS[(method, path)]
        assert set(Role) - access.value, f"{method} {path}: every role may use it"
        for role in Role:
            response = abuse_api.client.request(
                method, filled(path), json={}, headers=abuse_api.auth(role)
            )
            status = response.status_code
            if (role in access.value and status in (401, 403)) or status >= 500:
                refused_wrongly.append(f"{method} {path} as {role.value}: {status}")
            elif role not in access.value and (
                status != 403 or response.headers.get("content-type") != "application/problem+json"
            ):
                admitted_wrongly.append(f"{method} {path} as {role.value}: {status}")
    assert not admitted_wrongly, f"roles let past a route they lack: {admitted_wrongly}"
    assert not refused_wrongly, f"roles refused (or failed) on their own routes: {refused_wrongly}"


def test_a_revoked_key_is_refused_on_every_route_within_the_one_second_cache_window(
    abuse_api: Api,
) -> None:
    store = abuse_api.services.api_keys
    _key, secret = store.create("soon-revoked", Role.ADMIN)  # admin: only 401 can stop it
    headers = {"Authorization": f"Bearer {secret}"}
    params = {"subject": "artist-1", "purpose": "ai-training"}
    assert abuse_api.client.get("/v1/check", params=params, headers=headers).status_code == 200
    assert store.revoke("soon-revoked") == 1
    revoked_at = time.monotonic()
    while abuse_api.client.get("/v1/check", params=params, headers=headers).status_code != 401:
        assert time.monotonic() - revoked_at < 5 * CACHE_SECONDS, "the revoked key still works"
        time.sleep(0.01)
    took = time.monotonic() - revoked_at
    # The documented window, plus the one request that observed the refusal.
    assert took < CACHE_SECONDS + 0.5, f"refused only {took:.2f} s after its revocation"
    wrong = []
    for method, path in protected_operations(abuse_api):
        response = abuse_api.client.request(method, filled(path), json={}, headers=headers)
        if response.status_code != 401:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong, f"routes a revoked key may still use: {wrong}"


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
