"""The projections worker: follow the ledger's notification log into the read models.

`Projector` reads the log in batches after the view's tracked position and applies each
batch in one transaction with its tracking record (`PermissionsView.apply`), so a crash
at any point loses nothing and applies nothing twice, and a rebuild runs at the speed of
bulk inserts rather than one transaction per event (the library's `ProjectionRunner`).
Positions may have gaps (a PostgreSQL sequence), so it never assumes position + 1.

It follows new events by LISTEN/NOTIFY on PostgreSQL (the channel the library's recorder
notifies on every insert) and by polling on SQLite, which has no push subscription.
It runs in the foreground (`run`, for `consent-ledger project`), in a background thread
(`start_background`, for the HTTP server), or just long enough to catch up (`catch_up`,
for one-shot readers such as the CLI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.application import ConsentLedger
from ledger.backoff import store_outage
from ledger.errors import LedgerError, StoreUnavailableError
from ledger.events import Entry
from projections.current_index import CurrentIndex
from projections.database import translate_driver_errors
from projections.read_models import PermissionsView, ViewConflictError

DEFAULT_BATCH_SIZE: Final = 2000
DEFAULT_POLL_SECONDS: Final = 0.05
INDEX_SLICE_SECONDS: Final = 0.25  # the longest the worker folds the index in one go

_log = structlog.get_logger("projections.runner")


class ViewSource(Protocol):
    """Where a projector finds its view: a ReadModel (or a test's wrapper of one)."""

    @property
    def view(self) -> PermissionsView:
        """Return the view, opening it on first use."""
        ...

    def close(self) -> None:
        """Close the view's own connections."""
        ...


Guard = Callable[[], bool]
"""Asked before each batch: may this process write now (does it hold the lease)?"""


class DueWork(Protocol):
    """Work the worker runs after each catch-up (the expiry scheduler)."""

    def run_due(self) -> int:
        """Do what is due now; return how many ledger events it appended."""
        ...


@dataclass(frozen=True)
class ProjectionStatus:
    """How far the read models are behind the ledger (for `/readyz` and logs)."""

    position: int
    head: int
    running: bool

    @property
    def lag(self) -> int:
        """Return head - position: an upper bound of the events not yet applied."""
        return max(self.head - self.position, 0)

    def to_json(self) -> dict[str, object]:
        """Return the status as JSON for health endpoints."""
        return {
            "position": self.position,
            "head": self.head,
            "lag": self.lag,
            "running": self.running,
        }


class Projector:
    """Apply the ledger's events to the permissions view, in batches, exactly once."""

    def __init__(
        self,
        ledger: ConsentLedger,
        model: ViewSource,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        index: CurrentIndex | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.ledger = ledger
        self.model = model
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.index = index  # the current check's in-memory index, kept by `run`
        self._advanced = threading.Condition()
        self._position = -1  # last position this process saw committed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._batches = 0

    # ------------------------------------------------------------------ queries

    @property
    def view(self) -> PermissionsView:
        """Return the view this projector keeps."""
        return self.model.view

    def position(self) -> int:
        """Return the position the read models reflect (read from the tracking record)."""
        position = self.view.position()
        self._saw(position)
        return position

    def head(self) -> int:
        """Return the ledger's latest position."""
        return self.ledger.ledger_position()

    def status(self) -> ProjectionStatus:
        """Return the view's position, the ledger head and whether a worker runs here."""
        return ProjectionStatus(self.position(), self.head(), self.running)

    def lag(self) -> int:
        """Return how many positions the read models are behind the ledger head."""
        return self.status().lag

    @property
    def running(self) -> bool:
        """Tell whether a background worker of this projector is running."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ catch-up

    def catch_up(
        self,
        *,
        target: int | None = None,
        deadline: float | None = None,
        guard: Guard | None = None,
    ) -> int:
        """Apply batches until the view reaches `target` (or the log's end); return its position.

        `deadline` is a `time.monotonic()` instant after which no new batch starts.
        `guard` is asked before each batch (a leader lease: fencing); False stops.
        Batches applied meanwhile by another projector are skipped, not repeated.
        """
        return self._catch_up(self.view, target=target, deadline=deadline, guard=guard)

    def _catch_up(
        self,
        view: PermissionsView,
        *,
        target: int | None = None,
        deadline: float | None = None,
        guard: Guard | None = None,
    ) -> int:
        """Apply batches of the ledger to `view` (the live one or a rebuild's shadow)."""
        live = view is self.view
        after = view.position()
        if live:
            self._saw(after)
        while target is None or after < target:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if guard is not None and not guard():
                break
            with translate_driver_errors("the event store is unavailable"):
                notifications = self.ledger.recorder.select_notifications(
                    start=after, limit=self.batch_size, inclusive_of_start=False
                )
            if not notifications:
                break
            entries = [self.ledger.entry(n) for n in notifications]
            before = after
            try:
                after = view.apply(entries, after=after)
            except ViewConflictError:
                after = view.position()
                continue
            if live and self.index is not None:
                self.index.offer(entries, after=before)
            if live:
                self._batches += 1
                self._saw(after)
        return after

    def entries_after(self, after: int, limit: int) -> list[Entry]:
        """Return up to `limit` ledger entries after position `after` (the index's tail)."""
        with translate_driver_errors("the event store is unavailable"):
            notifications = self.ledger.recorder.select_notifications(
                start=after, limit=limit, inclusive_of_start=False
            )
        return [self.ledger.entry(n) for n in notifications]

    def tail_index(
        self, stop: threading.Event | None = None, *, seconds: float | None = None
    ) -> bool:
        """Bring the in-memory index towards the log's end; tell whether it got there
        (True without an index). `seconds` bounds the time spent (a first build of a
        large ledger gives way to the view's catch-up between its slices).

        The index reads the log itself, so batches another process's projector applied
        reach it too; a batch this projector applied was offered to it already.
        """
        if self.index is None:
            return True
        deadline = None if seconds is None else time.monotonic() + seconds

        def halt() -> bool:
            return (stop is not None and stop.is_set()) or (
                deadline is not None and time.monotonic() >= deadline
            )

        return self.index.tail(self.entries_after, stop=halt)

    def rebuild(self) -> int:
        """Project the whole log again from position 0 into shadow tables, then swap them in.

        Readers keep reading the old tables until the swap, which replaces them and the
        tracking record in one transaction: they never see an empty or partial view.
        A worker running meanwhile keeps the live tables current; the shadow catches up
        with it before the swap.
        """
        _log.info("projection_rebuild_started", view=self.view.tracking_name)
        started = time.monotonic()
        shadow = self.view.shadow()
        while True:
            target = max(self.view.position(), self.head())
            self._catch_up(shadow, target=target)
            if self.view.swap_in(shadow):
                break
        position = self.position()
        _log.info(
            "projection_rebuilt",
            position=position,
            seconds=round(time.monotonic() - started, 3),
        )
        return position

    def _saw(self, position: int) -> None:
        with self._advanced:
            if position != self._position:
                self._position = position
                self._advanced.notify_all()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the view to reach `position`; tell if it did.

        Wakes as soon as this process commits a batch, and polls the tracking record for
        progress made by a worker in another process.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self._position >= position or self.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._advanced:
                if self._position < position:
                    self._advanced.wait(min(remaining, max(self.poll_seconds, 0.01)))

    # ------------------------------------------------------------------- worker

    def run(
        self, stop: threading.Event, *, due: DueWork | None = None, guard: Guard | None = None
    ) -> None:
        """Follow the ledger until `stop` is set: catch up, run due work, wait for news.

        With `guard` (a leader lease), only while it answers True, checked before every
        batch; a stand-by just waits. A store outage is logged and retried with
        back-off; the worker does not die of it.
        """
        waiter = self._waiter()
        retrying = store_outage(self.poll_seconds).retrying()
        try:
            while not stop.is_set():
                try:
                    if guard is None or guard():
                        self.catch_up(guard=guard)
                        if due is not None and due.run_due():
                            self.catch_up(guard=guard)
                    # A stand-by's index follows the log too; a first build runs in
                    # slices, with no wait between them.
                    built = self.tail_index(stop, seconds=INDEX_SLICE_SECONDS)
                    retrying.succeeded()
                except StoreUnavailableError as error:
                    _log.warning("projection_store_unavailable", error=str(error))
                    stop.wait(retrying.failed())
                    continue
                except LedgerError as error:
                    _log.error("projection_failed", error=error.detail)
                    raise
                if built:
                    waiter(stop)
        finally:
            close = getattr(waiter, "close", None)
            if close is not None:
                close()

    def start_background(self, *, due: DueWork | None = None, guard: Guard | None = None) -> None:
        """Run the worker in a daemon thread (the HTTP server's projector)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run,
            args=(self._stop,),
            kwargs={"due": due, "guard": guard},
            name="projector",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background worker and wait up to `timeout` seconds for it to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def close(self) -> None:
        """Stop the background worker and close the read models' own connections."""
        self.stop()
        self.model.close()

    def _waiter(self) -> Callable[[threading.Event], None]:
        recorder = self.ledger.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            return _Listener(recorder, self.poll_seconds)

        def poll(stop: threading.Event) -> None:
            stop.wait(self.poll_seconds)

        return poll


class _Listener:
    """Wait for the PostgreSQL NOTIFY the library's recorder sends with each insert."""

    def __init__(self, recorder: PostgresApplicationRecorder, timeout: float) -> None:
        self.recorder = recorder
        self.timeout = max(timeout, 0.5)  # a heartbeat: catch up even if a notify is lost
        self._connection: Any = None

    def __call__(self, stop: threading.Event) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        try:
            if self._connection is None:
                with self.recorder.datastore.get_connection() as pooled:
                    info = pooled.info.get_parameters()
                    password = pooled.info.password
                conninfo = make_conninfo("", **info, password=password, connect_timeout=5)
                self._connection = psycopg.connect(conninfo, autocommit=True)
                self._connection.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(self.recorder.channel_name))
                )
            for _ in self._connection.notifies(timeout=self.timeout, stop_after=1):
                pass
        except psycopg.Error as error:
            _log.warning("projection_listen_failed", error=str(error))
            self.close()
            stop.wait(self.timeout)

    def close(self) -> None:
        """Close the listening connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
