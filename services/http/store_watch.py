"""Watch the database so that, while it is unreachable, requests answer 503 at once.

The pools beneath the ledger wait out their own timeouts and retries before they give
up on a dead server (the event store's first failing call takes tens of seconds), and
every request stuck there holds a thread. A `StoreWatch` probes PostgreSQL once a second
on a dedicated connection with a short connect timeout; while the last probe failed, the
routes refuse at once with 503 "Store unavailable", writing nothing. When a probe
succeeds again requests flow again. SQLite needs no watch: the file is always "reachable".
"""

from __future__ import annotations

import threading
from typing import Any, Final

import psycopg
import structlog

from ledger.errors import StoreUnavailableError
from projections.database import Database

PROBE_INTERVAL_SECONDS: Final = 1.0
PROBE_TIMEOUT_SECONDS: Final = 2

_log = structlog.get_logger("consent_ledger.api.store_watch")


class StoreWatch:
    """Probe the database periodically; tell whether it answered the last probe."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float = PROBE_INTERVAL_SECONDS,
        timeout: int = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self.database = database
        self.interval = interval
        self.timeout = timeout
        self._available = True
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """Tell whether the database answered the last probe."""
        return self._available

    def require(self) -> None:
        """Raise StoreUnavailableError if the last probe failed."""
        if not self._available:
            raise StoreUnavailableError(
                "the database did not answer its last probe; nothing was written, retry shortly"
            )

    def probe(self) -> None:
        """Probe PostgreSQL now and record the outcome; raise if it does not answer.

        Raises StoreUnavailableError naming the driver's error. SQLite is not probed.
        """
        if self.database.dialect != "postgres":
            return  # a file: what reads it (the ledger position of /readyz) tells the rest
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = psycopg.connect(
                        self.database.url.conninfo(), connect_timeout=self.timeout, autocommit=True
                    )
                self._conn.execute("SELECT 1")
            except psycopg.Error as error:
                self._drop_connection()
                self._mark(False)
                raise StoreUnavailableError(f"PostgreSQL is unavailable: {error}") from None
            self._mark(True)

    def start(self) -> None:
        """Probe in a daemon thread until `stop` (PostgreSQL only; idempotent)."""
        if self.database.dialect != "postgres" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="store-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing and close the probe's connection."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.timeout + self.interval + 1)
        with self._lock:
            self._drop_connection()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.probe()
            except StoreUnavailableError:
                continue  # recorded by probe(); the next probe may find it back

    def _mark(self, available: bool) -> None:
        if available != self._available:
            _log.warning("store_reachable" if available else "store_unreachable")
        self._available = available

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                _log.debug("probe_connection_close_failed")
