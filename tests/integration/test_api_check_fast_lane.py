"""The fast lane of `GET /v1/check` answers exactly as the declared route does.

A query with a parameter the fast lane does not take (here `via=route`, which the
declared route ignores) always goes through FastAPI's route, so the same request with
and without it compares the two paths on one app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api_keys import ApiKey, ApiKeyStore, Role
from services.bootstrap import Services, bootstrap
from services.http.auth import CACHE_SECONDS, REFRESH_AHEAD_SECONDS, Access, Authenticator
from services.http.fast_check import check_params
from services.http.routes.permissions import answer_check, answer_in_memory
from services.settings import Settings
from tests.integration.api_support import TERMS_2025, Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def seeded_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served ledger where artist-1 accepted terms and granted, artist-2 revoked."""
    folder: Path = tmp_path_factory.mktemp("fast-lane")
    services = bootstrap(
        Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", data_dir=folder / "data")
    )
    try:
        with running_api(services) as api:
            assert api.post("/v1/terms", TERMS_2025).status_code == 201
            for subject in ("artist-1", "artist-2"):
                accepted = api.post(
                    f"/v1/subjects/{subject}/terms-acceptances",
                    {"version": "2025-05", "effective_at": "2025-05-20T00:00:00Z"},
                    role=Role.WRITER,
                )
                assert accepted.status_code == 201, accepted.text
            grants: list[tuple[str, str, dict[str, Any]]] = [
                ("artist-1", "grants", {"purpose": "ai-training", "content_ids": ["t1"]}),
                ("artist-1", "grants", {"purpose": "data-mining", "party": "acme"}),
                ("artist-2", "revocations", {"purpose": "personalization", "aspect": "voice"}),
            ]
            for subject, kind, body in grants:
                written = api.post(f"/v1/subjects/{subject}/{kind}", body, role=Role.WRITER)
                assert written.status_code == 201, written.text
            yield api
    finally:
        services.close()


def without_request_id(response: Any) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


queries = st.fixed_dictionaries(
    {
        "subject": st.sampled_from(["artist-1", "artist-2", "nobody", "", "bad id", "a" * 300]),
        "purpose": st.sampled_from(["ai-training", "data-mining", "personalization", "nope"]),
    },
    optional={
        "party": st.sampled_from(["platform", "acme", "*", "Bad Party"]),
        "content": st.sampled_from(["t1", "t2", "", "bad id"]),
        "aspect": st.sampled_from(["all", "voice", "music", "teeth"]),
        "model": st.sampled_from(["m-1", "Bad Model"]),
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries)
def test_the_fast_lane_answers_every_check_as_the_declared_route_does(
    seeded_api: Api, query: dict[str, str]
) -> None:
    assert check_params("&".join(f"{k}={v}" for k, v in query.items()).encode()) is not None
    seeded_api.get("/v1/check", Role.READER, params={**query, "via": "route"})  # caches the key
    fast = seeded_api.get("/v1/check", Role.READER, params=query)
    declared = seeded_api.get("/v1/check", Role.READER, params={**query, "via": "route"})
    assert without_request_id(fast) == without_request_id(declared)
    assert fast.headers["x-request-id"] != declared.headers["x-request-id"]


def test_a_check_with_a_repeated_or_unknown_parameter_or_a_time_is_left_to_the_declared_route() -> (
    None
):
    assert check_params(b"subject=a&purpose=ai-training&party=acme") == {
        "subject": "a",
        "purpose": "ai-training",
        "party": "acme",
    }
    assert check_params(b"subject=a%20b&purpose=") == {"subject": "a b", "purpose": ""}
    for query in (
        b"subject=a&subject=b&purpose=ai-training",
        b"subject=a&purpose=ai-training&at=2025-01-01",
        b"subject=a&purpose=ai-training&min_position=3",
        b"subject=a&purpose=ai-training&via=route",
        b"subject=a",
    ):
        assert check_params(query) is None, query


def test_a_key_revoked_after_fast_checks_is_refused_once_the_cache_window_passes(
    services: Services,
) -> None:
    _, secret = services.api_keys.create("revoked-soon", "reader")
    headers = {"Authorization": f"Bearer {secret}"}
    params = {"subject": "artist-1", "purpose": "ai-training"}
    with running_api(services) as api:
        for _ in range(3):  # the first verifies the key; the others take the fast lane
            assert api.client.get("/v1/check", params=params, headers=headers).status_code == 200
        services.api_keys.revoke("revoked-soon")
        time.sleep(CACHE_SECONDS)  # the documented bound: servers re-check a key this often
        refused = api.client.get("/v1/check", params=params, headers=headers)
        assert_problem(refused, 401, "Not authenticated")


class CountingKeyStore(ApiKeyStore):
    """The real key store, counting its lookups."""

    lookups = 0

    def authenticate(self, secret: str) -> ApiKey | None:
        self.lookups += 1
        return super().authenticate(secret)


@pytest.fixture
def counted(services: Services) -> tuple[CountingKeyStore, Authenticator, str]:
    """A counting key store, an authenticator over it, and the secret of a reader key."""
    store = CountingKeyStore(services.database)
    _, secret = store.create("counted", "reader")
    return store, Authenticator(store), secret


def test_concurrent_requests_with_an_unverified_key_share_one_store_lookup(
    counted: tuple[CountingKeyStore, Authenticator, str],
) -> None:
    store, auth, secret = counted

    async def many() -> list[ApiKey]:
        return await asyncio.gather(*(auth.authenticate(secret) for _ in range(20)))

    keys = asyncio.run(many())
    assert {key.name for key in keys} == {"counted"}
    assert store.lookups == 1
    assert auth.admit_cached(secret, Access.READ) == keys[0]
    assert auth.admit_cached(secret, Access.RECORD) is None  # a reader may not record


def test_a_key_in_use_is_verified_again_before_its_cache_window_ends(
    counted: tuple[CountingKeyStore, Authenticator, str],
) -> None:
    store, auth, secret = counted

    async def scenario() -> tuple[ApiKey | None, ApiKey | None]:
        await auth.authenticate(secret)
        verified = time.monotonic()
        await asyncio.sleep(CACHE_SECONDS - REFRESH_AHEAD_SECONDS / 2)  # into the last stretch
        admitted = auth.admit_cached(secret, Access.READ)  # served, and verified again
        for _ in range(500):  # the background verification, within 5 s
            if store.lookups == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(max(0.0, verified + CACHE_SECONDS - time.monotonic()) + 0.05)
        return admitted, auth.cached(secret)  # past the first window: still cached

    admitted, later = asyncio.run(scenario())
    assert admitted is not None
    assert later == admitted
    assert store.lookups == 2


def test_a_current_check_is_answered_from_memory_as_the_route_answers_it(
    tmp_path: Path,
) -> None:
    services = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", data_dir=tmp_path))
    try:
        with running_api(services) as api:
            assert api.post("/v1/terms", TERMS_2025).status_code == 201
            body = {"version": "2025-05", "effective_at": "2025-05-20T00:00:00Z"}
            path = "/v1/subjects/artist-1/terms-acceptances"
            assert api.post(path, body, role=Role.WRITER).status_code == 201
            grant = {"purpose": "ai-training", "content_ids": ["t1"]}
            assert (
                api.post("/v1/subjects/artist-1/grants", grant, role=Role.WRITER).status_code == 201
            )
            reader = services.reader
            deadline = time.monotonic() + 30
            while (head := reader.index_head()) is None or reader.check_in_memory(
                head, "artist-1", "ai-training", content="t1"
            ) is None:
                assert time.monotonic() < deadline, "the index never caught up with the head"
                time.sleep(0.02)
            for query in (
                {"subject": "artist-1", "purpose": "ai-training", "content": "t1"},
                {"subject": "artist-1", "purpose": "ai-training", "content": "t2"},
                {"subject": "artist-1", "purpose": "personalization", "aspect": "voice"},
                {"subject": "nobody", "purpose": "ai-training"},
            ):
                from_memory = answer_in_memory(reader, reader.index_head() or 0, **query)
                assert from_memory is not None, query
                declared = answer_check(reader, **query)  # type: ignore[arg-type]
                assert comparable(from_memory.body) == comparable(declared.body), query
    finally:
        services.close()


def comparable(body: bytes | memoryview) -> dict[str, Any]:
    """A check's answer without the instants `now` filled in (they differ by microseconds)."""
    answer: dict[str, Any] = orjson.loads(bytes(body))
    for field in ("at", "known_at"):
        answer.pop(field, None)
    return answer
