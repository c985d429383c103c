"""Every route checks its role: the matrix of caller x route -> status class.

| access      | writer | reader | auditor | admin |
| ----------- | ------ | ------ | ------- | ----- |
| record      |   2xx  |  403   |   403   |  2xx  |
| read        |   403  |  2xx   |   2xx   |  2xx  |
| audit       |   403  |  403   |   2xx   |  2xx  |
| administer  |   403  |  403   |   403   |  2xx  |

No key, an unknown key or another scheme is 401; probes and docs need no key.
One ledger (SQLite) serves the whole matrix; the keys' table is tested on both
backends by the other API tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from services.api_keys import Role
from services.bootstrap import bootstrap
from services.cli.main import main
from services.http.auth import Access
from services.settings import Settings
from tests.integration.api_support import TERMS_2025, Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(120)

_counter = itertools.count()


@dataclass(frozen=True)
class Call:
    """How to call one route: its path (filled per call), params and body."""

    method: str
    template: str
    access: Access | None  # None: public
    path: Callable[[Api], str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    body: Callable[[Api], Any] | None = None

    def send(self, api: Api, headers: dict[str, str]) -> Any:
        url = self.path(api) if self.path else self.template
        body = self.body(api) if self.body else None
        return api.client.request(self.method, url, params=self.params, json=body, headers=headers)


def fresh_grant_path(api: Api) -> str:
    receipt = api.services.ledger.grant(f"artist-{next(_counter)}", "ai-training")
    return f"/v1/events/{receipt.event_id}/void"


CALLS = [
    Call(
        "POST",
        "/v1/terms",
        Access.ADMINISTER,
        body=lambda api: {**TERMS_2025, "version": f"v-{next(_counter)}"},
    ),
    Call(
        "POST",
        "/v1/subjects/{subject}/terms-acceptances",
        Access.RECORD,
        path=lambda api: "/v1/subjects/artist-1/terms-acceptances",
        body=lambda api: {"version": "2025-05"},
    ),
    Call(
        "POST",
        "/v1/subjects/{subject}/grants",
        Access.RECORD,
        path=lambda api: "/v1/subjects/artist-1/grants",
        body=lambda api: {"purpose": "ai-training"},
    ),
    Call(
        "POST",
        "/v1/subjects/{subject}/revocations",
        Access.RECORD,
        path=lambda api: "/v1/subjects/artist-1/revocations",
        body=lambda api: {"purpose": "data-mining"},
    ),
    Call(
        "POST",
        "/v1/events/{event_id}/void",
        Access.RECORD,
        path=fresh_grant_path,
        body=lambda api: {"reason": "entered in error"},
    ),
    Call(
        "POST",
        "/v1/subjects/{subject}/erasure",
        Access.ADMINISTER,
        path=lambda api: f"/v1/subjects/gone-{next(_counter)}/erasure",
        body=lambda api: {},
    ),
    Call(
        "GET",
        "/v1/check",
        Access.READ,
        params={"subject": "artist-1", "purpose": "ai-training"},
    ),
    Call(
        "POST",
        "/v1/filter",
        Access.READ,
        body=lambda api: {
            "purpose": "ai-training",
            "items": [{"subject": "artist-1", "content": "t1"}],
        },
    ),
    Call(
        "GET",
        "/v1/subjects/{subject}/content/{content}/ai-signals",
        Access.READ,
        path=lambda api: "/v1/subjects/artist-1/content/t1/ai-signals",
    ),
    Call(
        "GET",
        "/v1/subjects/{subject}/history",
        Access.AUDIT,
        path=lambda api: "/v1/subjects/artist-1/history",
    ),
    Call("GET", "/v1/ledger/checkpoint", Access.READ),
    Call("GET", "/v1/ledger/proofs/inclusion", Access.READ, params={"position": 1}),
    Call("GET", "/v1/ledger/proofs/consistency", Access.READ, params={"first": 1}),
    Call("GET", "/v1/ledger/tiles/checkpoint", Access.READ),
    Call(
        "GET",
        "/v1/ledger/tiles/tile/entries/{rest:path}",
        Access.READ,
        path=lambda api: "/v1/ledger/tiles/tile/entries/000.p/1",
    ),
    Call(
        "GET",
        "/v1/ledger/tiles/tile/{level}/{rest:path}",
        Access.READ,
        path=lambda api: "/v1/ledger/tiles/tile/0/000.p/1",
    ),
    Call("GET", "/healthz", None),
    Call("GET", "/readyz", None),
    Call("GET", "/openapi.json", None),
    Call("GET", "/docs", None),
    Call("GET", "/docs/oauth2-redirect", None),  # Swagger UI's, served offline
    Call("GET", "/redoc", None),
    Call("GET", "/", None),  # redirects to /docs
    Call("GET", "/v1/subjects", Access.AUDIT, params={"prefix": "artist-"}),
    Call(
        "GET",
        "/v1/subjects/{subject}/overview",
        Access.AUDIT,
        path=lambda api: "/v1/subjects/artist-1/overview",
    ),
]

CALLERS = ["no key", "unknown key", "basic scheme", *(role.value for role in Role)]


@pytest.fixture(scope="module")
def matrix_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("matrix")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", data_dir=folder / "data")
    )
    services.ledger.publish_terms("2025-05", services.ledger.clock.now(), [])
    services.ledger.grant("artist-1", "ai-training", content_ids=["t1"])
    try:
        with running_api(services) as api:
            yield api
    finally:
        services.close()


def headers_of(api: Api, caller: str) -> dict[str, str]:
    if caller == "no key":
        return {}
    if caller == "unknown key":
        return {"Authorization": "Bearer cl_not-a-key-the-ledger-knows"}
    if caller == "basic scheme":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    return api.auth(Role(caller))


def expected_class(call: Call, caller: str) -> str:
    if call.access is None:
        return "2xx"
    if caller in ("no key", "unknown key", "basic scheme"):
        return "401"
    return "2xx" if Role(caller) in call.access.value else "403"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.template}")
def test_route_answers_each_caller_by_its_role(matrix_api: Api, call: Call, caller: str) -> None:
    response = call.send(matrix_api, headers_of(matrix_api, caller))
    want = expected_class(call, caller)
    if want == "2xx":
        assert 200 <= response.status_code < 300, response.text
    elif want == "401":
        assert_problem(response, 401, "Not authenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    else:
        body = assert_problem(response, 403, "Forbidden")
        assert caller in body["detail"]


def test_the_matrix_covers_every_route_of_the_app(matrix_api: Api) -> None:
    app_routes = {
        (method, route.path)
        for route in matrix_api.client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    covered = {(call.method, call.template) for call in CALLS}
    assert app_routes <= covered, f"routes missing from the role matrix: {app_routes - covered}"


def test_keys_are_stored_only_as_hashes(matrix_api: Api) -> None:
    with matrix_api.services.database.transaction() as cursor:
        cursor.execute("SELECT key_sha256, name, role FROM api_keys")
        rows = cursor.fetchall()
    stored = " ".join(str(value) for row in rows for value in row)
    for secret in matrix_api.keys.values():
        assert secret not in stored
        assert len(secret) >= 43  # 32 random bytes, URL-safe base64


def test_keys_create_prints_the_key_once_alone_on_its_last_line(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--database-url", database_url, "--data-dir", str(tmp_path / "data")]
    assert main(["keys", "create", "web-front", "--role", "writer", *common]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("cl_")
    assert main(["keys", "create", "ci", "--role", "auditor", "--json", *common]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["name"], made["role"]) == ("ci", "auditor")
    assert main(["keys", "create", "x", "--role", "root", *common]) == 2
    assert "invalid choice" in capsys.readouterr().err
    services = bootstrap(Settings(database_url=database_url, data_dir=tmp_path / "data"))
    try:
        found = services.api_keys.authenticate(key)
        assert found is not None
        assert (found.name, found.role) == ("web-front", Role.WRITER)
        assert services.api_keys.authenticate(made["key"]) is not None
        assert services.api_keys.authenticate("cl_" + "x" * 43) is None
        assert services.api_keys.count() == 2
    finally:
        services.close()
