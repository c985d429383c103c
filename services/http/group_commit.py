"""Group commit: append concurrent writes in shared transactions, in arrival order.

Each request hands its command to a committer and waits on its own future (`append`
from the event loop, `submit` from any thread). `GroupCommitter` is a queue and one
committer thread: the thread takes every command that queued while the previous
transaction was in flight (up to `max_batch`) and hands them to the ledger's write
pipeline (`ConsentLedger.execute_many`) in one transaction. Nothing waits on a timer, so
a lone write commits at once; under load, one commit's cost is shared by the whole
batch, and so is waking the event loop: a batch's receipts reach their requests in one
callback per loop, not one wake-up per write (py-spy under write load showed the
per-write hand-over, `asyncio.wrap_future`, at a seventh of the event loop's time).

Order holds because one thread appends, in queue order; optimistic
concurrency holds because `execute_many` chains writes to one stream and retries a lost
race write by write.

`DirectCommitter` appends each write in its own transaction from a thread pool: the
baseline the benchmark compares against (`LEDGER_API_GROUP_COMMIT=off`).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from ledger.application import Receipt
from ledger.commands import Command
from ledger.errors import LedgerError

DEFAULT_MAX_BATCH: Final = 512
DIRECT_WORKERS: Final = 64

_log = structlog.get_logger("consent_ledger.api.group_commit")


class BatchWriter(Protocol):
    """The part of the ledger a committer needs: append many writes in one transaction."""

    def execute_many(self, commands: Sequence[Command]) -> list[Receipt | LedgerError]:
        """Append the commands' events in order; return a receipt or a refusal each."""
        ...


class Committer(Protocol):
    """Append pending writes; each caller waits on the future of its own write."""

    def submit(self, command: Command) -> Future[Receipt]:
        """Queue one command; the future holds its receipt or its LedgerError."""
        ...

    async def append(self, command: Command) -> Receipt:
        """Queue one command and await its receipt; raise its LedgerError (event loop only)."""
        ...

    def start(self) -> None:
        """Start appending (idempotent)."""
        ...

    def stop(self) -> None:
        """Append what is queued, then stop; a later `start` or `submit` starts again."""
        ...


@dataclass(frozen=True)
class _Job:
    """One queued write: its waiter is a thread's future, or an event loop's."""

    command: Command
    future: Future[Receipt] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[Receipt] | None = None

    def claim(self) -> bool:
        """Tell whether the write is still wanted (its waiter was not cancelled)."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        assert self.waiter is not None
        return not self.waiter.cancelled()  # read across threads: `_settle` checks again


Outcome = Receipt | BaseException


def _settle(pairs: list[tuple[asyncio.Future[Receipt], Outcome]]) -> None:
    """Hand each waiting request its outcome (runs on the requests' event loop)."""
    for waiter, outcome in pairs:
        if waiter.done():
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _deliver(jobs: Sequence[_Job], outcomes: Sequence[Outcome]) -> None:
    """Give each job its outcome: thread futures directly, each event loop in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Receipt], Outcome]]]
    by_loop = defaultdict(list)
    for job, outcome in zip(jobs, outcomes, strict=True):
        if job.future is not None:
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)
        else:
            assert job.loop is not None
            assert job.waiter is not None
            by_loop[job.loop].append((job.waiter, outcome))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, pairs)
        except RuntimeError:  # the loop was closed: nobody waits for these any more
            _log.warning("group_commit_loop_closed", writes=len(pairs))


_STOP: Final = object()


class GroupCommitter:
    """A queue and one committer thread that appends everything queued in one transaction.

    Requires `max_batch >= 1`. Statistics (`batches`, `writes`) tell the mean batch size.
    """

    def __init__(self, ledger: BatchWriter, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.ledger = ledger
        self.max_batch = max_batch
        self.batches = 0
        self.writes = 0
        # One queue per run of the thread: a stop marker reaches exactly its own thread,
        # and a job is never queued behind a stop marker (both are put under the lock).
        self._queue: queue.SimpleQueue[_Job | object] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, command: Command) -> Future[Receipt]:
        """Queue one command for the next transaction; start the thread if needed."""
        future: Future[Receipt] = Future()
        self._put(_Job(command, future=future))
        return future

    async def append(self, command: Command) -> Receipt:
        """Queue one command for the next transaction and await its receipt."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Receipt] = loop.create_future()
        self._put(_Job(command, loop=loop, waiter=waiter))
        return await waiter

    def _put(self, job: _Job) -> None:
        with self._lock:
            self._start_locked()
            assert self._queue is not None
            self._queue.put(job)

    def start(self) -> None:
        """Start the committer thread unless it runs."""
        with self._lock:
            self._start_locked()

    def stop(self) -> None:
        """Append every write queued so far, then stop the thread."""
        with self._lock:
            thread, jobs = self._thread, self._queue
            self._thread, self._queue = None, None
            if thread is None or jobs is None:
                return
            jobs.put(_STOP)
        thread.join()

    def _start_locked(self) -> None:
        if self._thread is not None:
            return
        jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._queue = jobs
        self._thread = threading.Thread(
            target=self._run, args=(jobs,), name="ledger-group-commit", daemon=True
        )
        self._thread.start()

    def _run(self, jobs: queue.SimpleQueue[_Job | object]) -> None:
        stopping = False
        while not stopping:
            first = jobs.get()
            if first is _STOP:
                return
            assert isinstance(first, _Job)
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True  # commit what came before the stop, then leave
                    break
                assert isinstance(item, _Job)
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        jobs = [job for job in batch if job.claim()]
        if not jobs:
            return
        self.batches += 1
        self.writes += len(jobs)
        outcomes: Sequence[Outcome]
        try:
            outcomes = self.ledger.execute_many([job.command for job in jobs])
        except LedgerError as error:  # the store is unreachable: nothing was appended
            outcomes = [error] * len(jobs)
        except Exception as error:  # a bug: every waiting request answers 500, not hangs
            _log.exception("group_commit_failed", writes=len(jobs))
            outcomes = [error] * len(jobs)
        _deliver(jobs, outcomes)


class DirectCommitter:
    """Append each write in its own transaction, from a pool of threads (the baseline)."""

    def __init__(self, ledger: BatchWriter, *, workers: int = DIRECT_WORKERS) -> None:
        self.ledger = ledger
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, command: Command) -> Future[Receipt]:
        """Append one command in a transaction of its own, on a pool thread."""
        self.start()
        assert self._pool is not None
        return self._pool.submit(self._append, command)

    async def append(self, command: Command) -> Receipt:
        """Append one command in a transaction of its own and await its receipt."""
        return await asyncio.wrap_future(self.submit(command))

    def start(self) -> None:
        """Create the thread pool unless it exists."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ledger-commit")

    def stop(self) -> None:
        """Finish the writes in flight, then release the threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _append(self, command: Command) -> Receipt:
        result = self.ledger.execute_many([command])[0]
        if isinstance(result, LedgerError):
            raise result
        return result


def build_committer(ledger: BatchWriter, *, group_commit: bool, max_batch: int) -> Committer:
    """Return the committer the settings ask for: grouped (default) or one per write."""
    if group_commit:
        return GroupCommitter(ledger, max_batch=max_batch)
    return DirectCommitter(ledger)


__all__ = [
    "BatchWriter",
    "Committer",
    "DirectCommitter",
    "GroupCommitter",
    "build_committer",
]
