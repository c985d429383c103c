"""`Idempotency-Key` on writes: replays answer the first answer and append nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from ledger.commands import Grant
from services.api_keys import Role
from services.bootstrap import Services
from services.http.idempotency import (
    LEASE_SECONDS,
    IdempotencyStore,
    IntentRecorder,
    Reservation,
    body_digest,
    slot_for,
)
from tests.integration.api_support import TERMS_2025, Api, assert_problem, running_api

pytestmark = pytest.mark.timeout(120)

GRANT = {"purpose": "ai-training", "content_ids": ["track-1"], "evidence": {"channel": "web"}}


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def post_with_key(api: Api, url: str, body: Any, key: str, **headers: str) -> Any:
    return api.client.post(
        url,
        content=body if isinstance(body, bytes) else orjson.dumps(body),
        headers=api.auth(
            Role.WRITER, **{"Idempotency-Key": key, "Content-Type": "application/json", **headers}
        ),
    )


def test_same_key_and_body_answer_the_first_answer_without_appending(api: Api) -> None:
    first = post_with_key(api, "/v1/subjects/artist-1/grants", GRANT, "k-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    position = api.position()
    again = post_with_key(api, "/v1/subjects/artist-1/grants", GRANT, "k-1")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.position() == position


def test_the_body_is_compared_as_canonical_json(api: Api) -> None:
    compact = b'{"purpose":"ai-training","content_ids":["track-1"],"evidence":{"channel":"web"}}'
    spaced = (
        b'{ "evidence": {"channel": "web"},\n'
        b' "content_ids": ["track-1"], "purpose": "ai-training" }'
    )
    first = post_with_key(api, "/v1/subjects/artist-1/grants", compact, "k-2")
    again = post_with_key(api, "/v1/subjects/artist-1/grants", spaced, "k-2")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


def test_same_key_with_another_body_is_a_409_and_appends_nothing(api: Api) -> None:
    post_with_key(api, "/v1/subjects/artist-1/grants", GRANT, "k-3")
    position = api.position()
    other = post_with_key(api, "/v1/subjects/artist-1/grants", {**GRANT, "aspect": "voice"}, "k-3")
    assert_problem(other, 409, "Idempotency key reused")
    assert api.position() == position


def test_a_key_is_scoped_to_its_route_and_path(api: Api) -> None:
    receipts = [
        post_with_key(api, "/v1/subjects/artist-1/grants", GRANT, "k-4").json(),
        post_with_key(api, "/v1/subjects/artist-2/grants", GRANT, "k-4").json(),
        post_with_key(api, "/v1/subjects/artist-1/revocations", GRANT, "k-4").json(),
    ]
    assert len({r["event_id"] for r in receipts}) == 3


def test_a_refusal_is_stored_and_replayed_like_an_answer(api: Api) -> None:
    url = "/v1/subjects/artist-1/terms-acceptances"
    first = post_with_key(api, url, {"version": "2025-05"}, "k-5")
    assert_problem(first, 404, "Unknown terms version")
    assert api.post("/v1/terms", TERMS_2025).status_code == 201
    again = post_with_key(api, url, {"version": "2025-05"}, "k-5")
    assert again.status_code == 404
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_malformed_key_is_refused(api: Api) -> None:
    url = "/v1/subjects/artist-1/grants"
    assert_problem(post_with_key(api, url, GRANT, "two words"), 422, "Invalid Idempotency-Key")
    assert_problem(post_with_key(api, url, GRANT, "k" * 256), 422)


def test_concurrent_requests_with_one_key_append_once(api: Api) -> None:
    position = api.position()
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: post_with_key(api, "/v1/subjects/artist-1/grants", GRANT, "k-6"),
                range(8),
            )
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert api.position() == position + 1


def reserve_like_the_route(store: IdempotencyStore, subject: str, key: str) -> Reservation:
    slot = slot_for("POST", "/v1/subjects/{subject}/grants", {"subject": subject}, key)
    claim = store.claim(slot, body_digest(orjson.dumps(GRANT)))
    assert isinstance(claim, Reservation)
    return claim


def test_a_crash_after_the_append_is_answered_from_the_recorded_event(api: Api) -> None:
    store: IdempotencyStore = api.client.app.state.idempotency  # type: ignore[attr-defined]
    reservation = reserve_like_the_route(store, "artist-7", "k-7")
    command = Grant(subject="artist-7", purpose="ai-training", content_ids=["track-1"])
    intents = IntentRecorder(store)
    intents.add(reservation, command.event_id)
    receipt = api.services.ledger.execute(command, before_commit=intents.flush)
    position = api.position()  # the process "died" here, before storing the answer
    store.clock = lambda: time.time() + LEASE_SECONDS + 1
    response = post_with_key(api, "/v1/subjects/artist-7/grants", GRANT, "k-7")
    assert response.status_code == 201
    assert response.json() == receipt.to_json()
    assert api.position() == position


def test_a_crash_before_the_append_lets_the_next_request_take_the_key_over(api: Api) -> None:
    store: IdempotencyStore = api.client.app.state.idempotency  # type: ignore[attr-defined]
    reserve_like_the_route(store, "artist-8", "k-8")  # the owner "died" before appending
    position = api.position()
    store.clock = lambda: time.time() + LEASE_SECONDS + 1
    response = post_with_key(api, "/v1/subjects/artist-8/grants", GRANT, "k-8")
    assert response.status_code == 201
    assert api.position() == position + 1
    store.clock = time.time
    again = post_with_key(api, "/v1/subjects/artist-8/grants", GRANT, "k-8")
    assert again.content == response.content
