"""Leader leases: at most one process of a deployment performs each background duty.

A lease is named after a duty (`projector`, `log`, …) and scoped to one ledger. On
PostgreSQL the leader holds a session-level advisory lock on a dedicated connection; a
heartbeat thread keeps that session busy once a second, and the session is opened with
`idle_session_timeout`, so the server ends it — and releases the lock — when the holder
dies (`kill -9` closes the socket at once) or stops answering (a paused process: after
`SESSION_TIMEOUT_MS`). Stand-bys try the lock each time they ask `held()` and take over
as soon as it is free. On SQLite the lease is an exclusive `flock` on a file beside the
database, released by the kernel when the holder dies.

Fencing: `held()` is asked before every batch a duty commits. It fails closed: a lost
session, a failed heartbeat or a store error all answer False, and the duty writes
nothing until it wins the lease again. What a batch writes is also exactly-once by its
own tracking row (projections, log) or harmless to repeat (expiry, at-least-once relay),
so even a leader paused between its check and its commit cannot double anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from ledger.errors import LedgerError
from ledger.instants import format_instant
from projections.database import Database, DatabaseUrl

SESSION_TIMEOUT_MS: Final = 3000  # the server ends a lock session silent this long
HEARTBEAT_SECONDS: Final = 1.0  # how often a leader's lock session speaks
_log = structlog.get_logger("services.leases")


def holder_id() -> str:
    """Return this process's name in the leaders table: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease(Protocol):
    """The right to perform one duty, held by at most one process at a time."""

    duty: str

    def held(self) -> bool:
        """Tell whether this process leads the duty now, trying to take the lease if not."""
        ...

    def release(self) -> None:
        """Give the lease up (a stand-by takes it over)."""
        ...


class PostgresLease:
    """A session advisory lock on a dedicated connection, with a heartbeat."""

    def __init__(
        self, url: DatabaseUrl, duty: str, on_acquired: Callable[[str], None] | None = None
    ) -> None:
        self.url = url
        self.duty = duty
        self.on_acquired = on_acquired
        self._key = f"{url.schema}.duty.{duty}"
        self._conn: Any = None
        self._leading = False
        self._mutex = threading.Lock()
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None

    def held(self) -> bool:
        """Check the lease on its own session (the fence); try to take it when not held."""
        import psycopg
        from psycopg.conninfo import make_conninfo

        with self._mutex:
            try:
                if self._conn is None or self._conn.closed:
                    self._leading = False
                    self._conn = psycopg.connect(
                        make_conninfo(
                            self.url.conninfo(),
                            options=f"-c idle_session_timeout={SESSION_TIMEOUT_MS}",
                            application_name=f"consent-ledger-lease:{os.getpid()}",
                        ),
                        autocommit=True,
                    )
                if self._leading:
                    self._conn.execute("SELECT 1")
                    return True
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s))", [self._key]
                ).fetchone()
                self._leading = bool(row and row[0])
            except psycopg.Error as error:
                self._lost(str(error))
                return False
        if self._leading:
            self._acquired()
        return self._leading

    def _acquired(self) -> None:
        _log.info("duty_leader", duty=self.duty, holder=holder_id())
        if self.on_acquired is not None:
            self.on_acquired(self.duty)
        self._beat_stop.clear()
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"lease-{self.duty}", daemon=True
        )
        self._beat.start()

    def _heartbeat(self) -> None:
        import psycopg

        while not self._beat_stop.wait(HEARTBEAT_SECONDS):
            with self._mutex:
                if not self._leading or self._conn is None:
                    return
                try:
                    self._conn.execute("SELECT 1")
                except psycopg.Error as error:
                    self._lost(str(error))
                    return

    def _lost(self, reason: str) -> None:
        """Forget the session (caller holds the mutex); the lock died with it."""
        if self._leading:
            _log.warning("duty_lost", duty=self.duty, holder=holder_id(), error=reason)
        self._leading = False
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken socket may raise anything
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Unlock (at once, so a stand-by can take over), close the session, stop the heartbeat."""
        import psycopg

        self._beat_stop.set()
        with self._mutex:
            was = self._leading
            self._leading = False
            if self._conn is not None:
                if was:
                    # Closing alone would free the lock only once the server notices.
                    with contextlib.suppress(psycopg.Error):
                        self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [self._key])
                self._conn.close()
                self._conn = None
        if was:
            _log.info("duty_released", duty=self.duty, holder=holder_id())


class FileLease:
    """An exclusive `flock` on a file: one holder per duty and SQLite database."""

    def __init__(
        self, path: Path, duty: str, on_acquired: Callable[[str], None] | None = None
    ) -> None:
        self.path = path
        self.duty = duty
        self.on_acquired = on_acquired
        self._fd: int | None = None

    def held(self) -> bool:
        """Tell whether this process holds the file lock, trying to take it if not."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        _log.info("duty_leader", duty=self.duty, holder=holder_id())
        if self.on_acquired is not None:
            self.on_acquired(self.duty)
        return True

    def release(self) -> None:
        """Unlock and close the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _log.info("duty_released", duty=self.duty, holder=holder_id())


class Leases:
    """Make the leases of one ledger and record who leads each duty (table `duty_leaders`).

    The table is informative (operators, the local cluster's smoke test): the lock, not
    the row, decides who leads.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def lease(self, duty: str) -> Lease:
        """Return a new, not yet held lease of `duty` on this ledger."""
        if self.database.dialect == "postgres":
            return PostgresLease(self.database.url, duty, self._record)
        assert self.database.url.sqlite_path is not None
        db = self.database.url.sqlite_path
        return FileLease(db.with_name(f"{db.name}.duty-{duty}.lock"), duty, self._record)

    def _ensure_table(self) -> None:
        self.database.create_tables(
            "duty_leaders",
            [
                "CREATE TABLE IF NOT EXISTS duty_leaders ("
                " duty TEXT PRIMARY KEY, holder TEXT NOT NULL, since TEXT NOT NULL)"
            ],
        )

    def _record(self, duty: str) -> None:
        try:
            self._ensure_table()
            with self.database.transaction() as cursor:
                cursor.execute(
                    self.database.sql(
                        "INSERT INTO duty_leaders (duty, holder, since) VALUES (?, ?, ?)"
                        " ON CONFLICT (duty) DO UPDATE SET holder = excluded.holder,"
                        " since = excluded.since"
                    ),
                    [duty, holder_id(), format_instant(datetime.now(UTC))],
                )
        except LedgerError as error:
            _log.warning("duty_leader_not_recorded", duty=duty, error=error.detail)

    def leaders(self) -> dict[str, dict[str, str]]:
        """Return `{duty: {holder, since}}` as last recorded by each leader."""
        self._ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute("SELECT duty, holder, since FROM duty_leaders ORDER BY duty")
            rows = cursor.fetchall()
        return {str(d): {"holder": str(h), "since": str(s)} for d, h, s in rows}
