"""The fast lane's shared ledger-head read: each caller gets a read sent after it asked,
and the callers waiting at one moment share one read."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.http.fast_check import SharedHeadRead


class Reads:
    """A head read that counts the reads begun and can be held until released."""

    def __init__(self) -> None:
        self.begun = 0
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False
        self.first_begun = threading.Event()

    def __call__(self) -> int:
        self.begun += 1
        number = self.begun
        self.first_begun.set()
        self.release.wait(5)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("store down")
        return number


async def in_flight(reads: Reads) -> None:
    """Return once the first read has begun (it is then held in flight)."""
    assert await asyncio.to_thread(reads.first_begun.wait, 5)


async def every_caller_gets_a_read_begun_after_it_asked() -> None:
    reads = Reads()
    shared = SharedHeadRead(reads)
    reads.release.clear()
    first = asyncio.ensure_future(shared.after_now())
    await in_flight(reads)
    asked_while_held = reads.begun
    later = [asyncio.ensure_future(shared.after_now()) for _ in range(20)]
    reads.release.set()
    assert await first == 1
    for result in await asyncio.gather(*later):
        assert result is not None
        assert result > asked_while_held


async def callers_waiting_at_one_moment_share_one_read() -> None:
    reads = Reads()
    shared = SharedHeadRead(reads)
    reads.release.clear()
    first = asyncio.ensure_future(shared.after_now())
    await in_flight(reads)
    waiting = [asyncio.ensure_future(shared.after_now()) for _ in range(20)]
    reads.release.set()
    await first
    assert set(await asyncio.gather(*waiting)) == {2}
    assert reads.begun == 2


async def a_failed_read_reaches_its_waiters_and_the_next_call_reads_again() -> None:
    reads = Reads()
    shared = SharedHeadRead(reads)
    reads.fail_next = True
    with pytest.raises(ConnectionError):
        await shared.after_now()
    assert await shared.after_now() == 2


def test_every_caller_gets_a_read_begun_after_it_asked() -> None:
    asyncio.run(every_caller_gets_a_read_begun_after_it_asked())


def test_callers_waiting_at_one_moment_share_one_read() -> None:
    asyncio.run(callers_waiting_at_one_moment_share_one_read())


def test_a_failed_read_reaches_its_waiters_and_the_next_call_reads_again() -> None:
    asyncio.run(a_failed_read_reaches_its_waiters_and_the_next_call_reads_again())
