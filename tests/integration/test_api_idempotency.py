"""`Idempotency-Key` on writes: replays answer the first answer and append nothing."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from ledger.application import Receipt
from ledger.commands import Command, Grant
from ledger.errors import LedgerError, StoreUnavailableError
from services.api_keys import Role
from services.bootstrap import Services
from services.http.group_commit import BatchWriter, GroupCommitter
from services.http.idempotency import (
    LEASE_SECONDS,
    IdempotencyStore,
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
    command = Grant(
        subject="artist-7",
        purpose="ai-training",
        content_ids=["track-1"],
        evidence={"channel": "web"},
        event_id=reservation.event_id,
    )
    receipt = api.services.ledger.execute(command)
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


class HeldCommitter:
    """A real group committer that holds the first `hold` writes until the test lets them go.

    Each held write is numbered in arrival order; `arrived` tells the test when one has
    reached the committer (so its request holds its key's reservation).
    """

    def __init__(self, ledger: BatchWriter, *, hold: int) -> None:
        self.inner = GroupCommitter(ledger)
        self.hold = hold
        self.gates: list[threading.Event] = []
        self.arrived: queue.SimpleQueue[int] = queue.SimpleQueue()

    def submit(self, command: Command) -> Future[Receipt]:
        if len(self.gates) >= self.hold:
            return self.inner.submit(command)
        gate, outer = threading.Event(), Future[Receipt]()
        self.gates.append(gate)

        def when_let_go() -> None:
            gate.wait()
            inner = self.inner.submit(command)
            try:
                outer.set_result(inner.result())
            except LedgerError as error:
                outer.set_exception(error)

        threading.Thread(target=when_let_go, daemon=True).start()
        self.arrived.put(len(self.gates) - 1)
        return outer

    async def append(self, command: Command) -> Receipt:
        return await asyncio.wrap_future(self.submit(command))

    def let_go(self, index: int) -> None:
        self.gates[index].set()

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        for gate in self.gates:
            gate.set()
        self.inner.stop()


class LandsThenFails(GroupCommitter):
    """Append each write for real, then answer its first `failures` like a dropped link."""

    def __init__(self, ledger: BatchWriter, *, failures: int) -> None:
        super().__init__(ledger)
        self.failures = failures
        self.landed: list[Receipt] = []

    def submit(self, command: Command) -> Future[Receipt]:
        inner = super().submit(command)
        if self.failures == 0:
            return inner
        self.failures -= 1
        self.landed.append(inner.result(30))
        failed = Future[Receipt]()
        failed.set_exception(StoreUnavailableError("the connection died as the commit landed"))
        return failed

    async def append(self, command: Command) -> Receipt:
        return await asyncio.wrap_future(self.submit(command))


def grant_event_ids(api: Api, subject: str) -> list[str]:
    return [str(item.entry.event.event_id) for item in api.services.ledger.history(subject)]


@pytest.mark.parametrize("first", ["the-owner", "the-retry"], ids=lambda f: f"{f}-commits-first")
def test_a_slow_request_whose_lease_was_taken_over_and_the_retry_append_one_event(
    services: Services, first: str
) -> None:
    committer = HeldCommitter(services.ledger.pipeline, hold=2)
    url = "/v1/subjects/artist-9/grants"
    with running_api(services, committer=committer) as api:
        store: IdempotencyStore = api.client.app.state.idempotency  # type: ignore[attr-defined]
        position = api.position()
        with ThreadPoolExecutor(2) as pool:
            owner = pool.submit(post_with_key, api, url, GRANT, "k-9")
            assert committer.arrived.get(timeout=30) == 0  # the owner holds the key, live
            store.clock = lambda: time.time() + LEASE_SECONDS + 1  # and outlived its lease
            retry = pool.submit(post_with_key, api, url, GRANT, "k-9")
            assert committer.arrived.get(timeout=30) == 1  # the retry took the key over
            store.clock = time.time
            requests = [owner, retry]
            for index in [0, 1] if first == "the-owner" else [1, 0]:
                committer.let_go(index)
                assert requests[index].result(30).status_code == 201
        answers = [owner.result(), retry.result()]
        assert answers[0].content == answers[1].content
        assert api.position() == position + 1
        assert grant_event_ids(api, "artist-9") == [answers[0].json()["event_id"]]
        again = post_with_key(api, url, GRANT, "k-9")
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == answers[0].content


def test_a_write_whose_commit_landed_as_the_store_failed_is_answered_by_its_retry_once(
    services: Services,
) -> None:
    committer = LandsThenFails(services.ledger.pipeline, failures=1)
    url = "/v1/subjects/artist-10/grants"
    with running_api(services, committer=committer) as api:
        position = api.position()
        assert_problem(post_with_key(api, url, GRANT, "k-10"), 503, "Store unavailable")
        (landed,) = committer.landed
        assert api.position() == position + 1  # the client saw 503, the ledger holds it
        retry = post_with_key(api, url, GRANT, "k-10")
        assert retry.status_code == 201
        assert retry.json() == landed.to_json()
        assert api.position() == position + 1
        assert grant_event_ids(api, "artist-10") == [str(landed.event_id)]


def test_a_key_the_outage_kept_from_being_released_is_taken_over_at_once_by_its_retry(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = LandsThenFails(services.ledger.pipeline, failures=1)
    url = "/v1/subjects/artist-11/grants"
    with running_api(services, committer=committer) as api:
        store: IdempotencyStore = api.client.app.state.idempotency  # type: ignore[attr-defined]
        release = store.release

        def store_gone(reservation: Reservation) -> None:
            monkeypatch.setattr(store, "release", release)  # the store is back after this
            raise StoreUnavailableError("the store is still gone")

        monkeypatch.setattr(store, "release", store_gone)
        assert_problem(post_with_key(api, url, GRANT, "k-11"), 503)
        (landed,) = committer.landed
        # Still pending under the first try's token, far from its lease's end; this
        # process gave it up, so the retry takes it over instead of waiting (409).
        retry = post_with_key(api, url, GRANT, "k-11")
        assert retry.status_code == 201, retry.text
        assert retry.json() == landed.to_json()
        assert grant_event_ids(api, "artist-11") == [str(landed.event_id)]
