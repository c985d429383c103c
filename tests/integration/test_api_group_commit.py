"""Group commit: queued writes share a transaction, keep their order, and fail alone."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from ledger.application import ConsentLedger, Receipt
from ledger.commands import Command, Grant
from ledger.errors import LedgerError, SubjectErasedError
from ledger.events import subject_stream_id
from services.bootstrap import Services
from services.http.group_commit import DirectCommitter, GroupCommitter
from tests.integration.api_support import running_api

pytestmark = pytest.mark.timeout(120)


class GatedLedger:
    """The real ledger, whose first `execute_many` waits for the test to open a gate.

    While the committer thread waits there, the test queues more writes: the next
    transaction must take them all.
    """

    def __init__(self, ledger: ConsentLedger) -> None:
        self.ledger = ledger
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batch_sizes: list[int] = []

    def execute_many(self, commands: Sequence[Command]) -> list[Receipt | LedgerError]:
        self.batch_sizes.append(len(commands))
        if len(self.batch_sizes) == 1:
            self.entered.set()
            assert self.gate.wait(30)
        return self.ledger.execute_many(commands)


def grant(ledger: ConsentLedger, subject: str, purpose: str = "ai-training") -> Grant:
    return Grant(subject=subject, purpose=purpose)


def test_writes_queued_during_a_commit_share_the_next_transaction_in_order(
    services: Services,
) -> None:
    ledger = services.ledger
    gated = GatedLedger(ledger)
    committer = GroupCommitter(gated)
    try:
        first = committer.submit(grant(ledger, "artist-0"))
        assert gated.entered.wait(30)
        subjects = [f"artist-{n % 5}" for n in range(40)]  # 8 writes to each of 5 streams
        queued = [committer.submit(grant(ledger, s)) for s in subjects]
        gated.gate.set()
        receipts = [f.result(30) for f in [first, *queued]]
    finally:
        committer.stop()
    assert gated.batch_sizes == [1, 40]
    assert (committer.batches, committer.writes) == (2, 41)
    positions = [r.position for r in receipts]
    assert positions == sorted(positions)
    assert len(set(positions)) == 41
    for subject in set(subjects):
        stream = list(ledger.events.get(subject_stream_id(subject)))
        assert [e.originator_version for e in stream] == list(range(1, len(stream) + 1))


def test_a_refused_write_fails_alone_and_its_batch_commits(services: Services) -> None:
    ledger = services.ledger
    ledger.erase("artist-gone")
    gated = GatedLedger(ledger)
    committer = GroupCommitter(gated)
    try:
        blocker = committer.submit(grant(ledger, "artist-0"))
        assert gated.entered.wait(30)
        before = committer.submit(grant(ledger, "artist-1"))
        refused = committer.submit(grant(ledger, "artist-gone"))
        after = committer.submit(grant(ledger, "artist-2"))
        gated.gate.set()
        blocker.result(30)
        assert before.result(30).position < after.result(30).position
        with pytest.raises(SubjectErasedError):
            refused.result(30)
    finally:
        committer.stop()
    assert gated.batch_sizes == [1, 3]


def test_writes_awaited_on_the_event_loop_share_a_batch_and_each_gets_its_own_answer(
    services: Services,
) -> None:
    ledger = services.ledger
    ledger.erase("artist-gone")
    gated = GatedLedger(ledger)
    committer = GroupCommitter(gated)

    async def requests() -> list[Receipt | BaseException]:
        blocker = asyncio.ensure_future(committer.append(grant(ledger, "artist-0")))
        assert await asyncio.to_thread(gated.entered.wait, 30)
        subjects = [*(f"artist-{n % 3}" for n in range(20)), "artist-gone"]
        queued = [asyncio.ensure_future(committer.append(grant(ledger, s))) for s in subjects]
        cancelled = asyncio.ensure_future(committer.append(grant(ledger, "artist-cancelled")))
        await asyncio.sleep(0)  # every request is queued (each ran up to its await)
        cancelled.cancel()
        gated.gate.set()
        outcomes = await asyncio.gather(blocker, *queued, return_exceptions=True)
        assert cancelled.cancelled()
        return outcomes

    try:
        outcomes = asyncio.run(requests())
    finally:
        committer.stop()
    receipts, refused = outcomes[:-1], outcomes[-1]
    assert all(isinstance(r, Receipt) for r in receipts)
    positions = [r.position for r in receipts if isinstance(r, Receipt)]
    assert positions == sorted(positions)
    assert len(set(positions)) == 21
    assert isinstance(refused, SubjectErasedError)
    assert gated.batch_sizes == [1, 21]  # the cancelled request was not appended
    assert list(ledger.events.get(subject_stream_id("artist-cancelled"))) == []


def test_stop_commits_every_queued_write_first(services: Services) -> None:
    ledger = services.ledger
    gated = GatedLedger(ledger)
    committer = GroupCommitter(gated)
    futures = [committer.submit(grant(ledger, "artist-0"))]
    assert gated.entered.wait(30)
    futures += [committer.submit(grant(ledger, f"artist-{n}")) for n in range(10)]
    stopper = threading.Thread(target=committer.stop)
    stopper.start()
    gated.gate.set()
    stopper.join(30)
    assert all(isinstance(f.result(0), Receipt) for f in futures)
    committer.submit(grant(ledger, "artist-0")).result(30)  # starts again on demand
    committer.stop()


def test_group_commit_and_other_writers_never_lose_a_write_to_one_stream(
    services: Services,
) -> None:
    ledger = services.ledger
    committer = GroupCommitter(ledger)
    try:
        with ThreadPoolExecutor(8) as pool:
            grouped: list[Future[Receipt]] = [
                committer.submit(grant(ledger, "artist-hot")) for _ in range(30)
            ]
            direct = [pool.submit(ledger.grant, "artist-hot", "data-mining") for _ in range(10)]
            receipts = [f.result(60) for f in grouped + direct]
    finally:
        committer.stop()
    assert len({r.event_id for r in receipts}) == 40
    stream = list(ledger.events.get(subject_stream_id("artist-hot")))
    assert [e.originator_version for e in stream] == list(range(1, 41))


def test_one_transaction_per_write_is_a_setting(services: Services) -> None:
    services.settings = dataclasses.replace(services.settings, api_group_commit=False)
    with running_api(services) as api:
        assert isinstance(api.client.app.state.committer, DirectCommitter)  # type: ignore[attr-defined]
        response = api.post("/v1/subjects/artist-1/grants", {"purpose": "ai-training"})
        assert response.status_code == 201


def test_concurrent_http_writes_all_get_their_own_receipt(services: Services) -> None:
    with running_api(services) as api:
        with ThreadPoolExecutor(16) as pool:
            responses = list(
                pool.map(
                    lambda n: api.post(
                        f"/v1/subjects/artist-{n % 4}/grants", {"purpose": "ai-training"}
                    ),
                    range(48),
                )
            )
        committer = api.client.app.state.committer  # type: ignore[attr-defined]
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["position"] for r in responses}) == 48
    assert committer.writes == 48
