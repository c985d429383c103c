"""`keys list`, `keys revoke NAME` and `keys rotate NAME`: a revoked key is refused everywhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.api_keys import Role
from services.bootstrap import bootstrap
from services.cli.main import main
from services.http.auth import CACHE_SECONDS
from services.settings import Settings
from tests.integration.api_support import Api, assert_problem, running_api
from tests.integration.test_api_auth import CALLS, Call

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def revoked_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    """A served ledger and the secret of an admin key that was used, then revoked."""
    folder: Path = tmp_path_factory.mktemp("revoked")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", data_dir=folder / "data")
    )
    services.ledger.publish_terms("2025-05", services.ledger.clock.now(), [])
    services.ledger.grant("artist-1", "ai-training", content_ids=["t1"])
    _, secret = services.api_keys.create("ops-laptop", "admin")
    try:
        with running_api(services) as api:
            headers = {"Authorization": f"Bearer {secret}"}
            assert api.client.get("/v1/ledger/checkpoint", headers=headers).status_code == 200
            services.api_keys.revoke("ops-laptop")
            time.sleep(CACHE_SECONDS)  # the documented bound: servers re-check a key this often
            yield api, secret
    finally:
        services.close()


@pytest.mark.parametrize(
    "call", [c for c in CALLS if c.access is not None], ids=lambda c: f"{c.method} {c.template}"
)
def test_a_revoked_key_is_refused_with_401_on_every_route(
    revoked_api: tuple[Api, str], call: Call
) -> None:
    api, secret = revoked_api
    response = call.send(api, {"Authorization": f"Bearer {secret}"})
    assert_problem(response, 401, "Not authenticated")


def test_keys_list_shows_names_and_roles_never_secrets_and_revoke_and_rotate_replace_them(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--database-url", database_url, "--data-dir", str(tmp_path / "data")]
    assert main(["keys", "create", "web-front", "--role", "writer", *common]) == 0
    old = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["keys", "create", "ci", "--role", "auditor", *common]) == 0
    ci = capsys.readouterr().out.strip().splitlines()[-1]

    assert main(["keys", "list", "--json", *common]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["role"]) for k in listed] == [("ci", "auditor"), ("web-front", "writer")]
    assert old not in json.dumps(listed)
    assert ci not in json.dumps(listed)

    assert main(["keys", "rotate", "web-front", *common]) == 0
    new = capsys.readouterr().out.strip().splitlines()[-1]
    assert new.startswith("cl_")
    assert new != old

    assert main(["keys", "revoke", "ci", *common]) == 0
    assert "revoked 1" in capsys.readouterr().out
    assert main(["keys", "revoke", "ci", *common]) == 3
    assert capsys.readouterr().err.strip() == "consent-ledger: error: no API key is named 'ci'"
    assert main(["keys", "rotate", "nobody", *common]) == 3

    services = bootstrap(Settings(database_url=database_url, data_dir=tmp_path / "data"))
    try:
        assert services.api_keys.authenticate(old) is None
        assert services.api_keys.authenticate(ci) is None
        rotated = services.api_keys.authenticate(new)
        assert rotated is not None
        assert (rotated.name, rotated.role) == ("web-front", Role.WRITER)
        assert [k.name for k in services.api_keys.list()] == ["web-front"]
    finally:
        services.close()
