"""An unreachable database answers 503 problem+json and writes nothing (PostgreSQL).

The app reaches PostgreSQL through a loopback proxy the test owns; closing the proxy
leaves the app's URL pointing at a closed loopback port, without touching the shared
server. Reopening it shows what the ledger holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.api_keys import Role
from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.integration.api_support import TcpProxy, assert_problem, running_api

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


@pytest.fixture
def proxy_and_services(postgres_url: str, tmp_path: Path) -> Iterator[tuple[TcpProxy, Services]]:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.open()
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    services = bootstrap(Settings(database_url=url, data_dir=tmp_path / "data"))
    try:
        yield proxy, services
    finally:
        proxy.close()
        services.close()


def until_answered(send: Callable[[], Any], seconds: float = 60) -> Any:
    """Send until the answer is not a 503: pooled connections broken by the outage fail
    once each before the pools reconnect."""
    deadline = time.monotonic() + seconds
    while (response := send()).status_code == 503:
        assert time.monotonic() < deadline, f"still unavailable: {response.text}"
        time.sleep(0.2)
    return response


def test_an_unreachable_store_is_503_writes_nothing_and_releases_keys(
    proxy_and_services: tuple[TcpProxy, Services],
) -> None:
    proxy, services = proxy_and_services
    with running_api(services) as api:
        assert (
            api.post("/v1/subjects/artist-1/grants", {"purpose": "ai-training"}).status_code == 201
        )
        for role in Role:  # every key is now in the authenticator's cache
            api.get("/v1/check", role=role, params={"subject": "a", "purpose": "ai-training"})
        position = api.position()
        retry_me = {"Idempotency-Key": "retry-me"}

        proxy.close()
        assert api.client.get("/healthz").status_code == 200
        assert_problem(api.client.get("/readyz"), 503, "Store unavailable")
        watch = api.client.app.state.store_watch  # type: ignore[attr-defined]
        assert not watch.available  # the probe of /readyz saw it; every route now says 503
        write = api.post("/v1/subjects/artist-1/grants", {"purpose": "data-mining"})
        assert_problem(write, 503, "Store unavailable")
        assert write.headers["Retry-After"] == "1"
        assert_problem(api.post("/v1/subjects/artist-2/erasure", {}), 503)
        keyed = api.post(
            "/v1/subjects/artist-1/grants", {"purpose": "ai-inference"}, headers=retry_me
        )
        assert_problem(keyed, 503)
        check = api.get("/v1/check", params={"subject": "artist-1", "purpose": "ai-training"})
        assert_problem(check, 503)

        proxy.open()
        until_answered(lambda: api.client.get("/readyz"))
        assert api.position() == position
        history = until_answered(
            lambda: api.get("/v1/subjects/artist-1/history", role=Role.AUDITOR)
        ).json()
        assert [e["purpose"] for e in history["events"]] == ["ai-training"]
        retried = until_answered(
            lambda: api.post(
                "/v1/subjects/artist-1/grants", {"purpose": "ai-inference"}, headers=retry_me
            )
        )
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers
        assert api.position() == position + 1
