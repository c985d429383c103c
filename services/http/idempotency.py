"""`Idempotency-Key` for writes: a repeated request answers the first answer again.

A key is scoped to its route: the method, the route template and the path parameters
(`POST /v1/subjects/{subject}/grants` for `artist-1` is another scope than for
`artist-2`). The body is compared by the SHA-256 of its RFC 8785 canonical JSON, so key
order and spacing do not matter. Same key, same body: the stored status and body again,
nothing appended. Same key, another body: 409.

How it stays right under concurrency, crashes and outages (table `api_idempotency`):
1. **Reserve first.** The request inserts its slot (a hash of scope and key) under a
   primary key, state `pending`, with a random lease token and the **event id** its
   write will carry, chosen once per slot. Of two concurrent requests one inserts; the
   other finds the row and waits (polling) for it to complete, then replays it; if it
   is still pending after `WAIT_SECONDS` it is told 409 "in progress".
2. **One event id per key.** The write is appended with the reservation's event id,
   whoever executes it: the first request, or a retry that took the reservation over.
   The write pipeline answers a command whose event id its stream already holds with
   that event's receipt instead of appending it again, decided under the event store's
   (stream, version) primary key (`ledger.write_pipeline`). So a key appends at most one
   event, even when two requests execute it at once (a slow live owner and the retry
   that took its lease over): the second answers the first's receipt.
3. **Complete.** After the append the status and body are stored (state `done`), by the
   reservation's current token holder only. A refusal by the ledger (4xx) is stored too
   and replayed, like an answer. A store outage (503) or a lost concurrency race leaves
   the outcome unknown (the commit may have landed as the connection died): the
   reservation is `released`, keeping its event id, so the next request with the key
   takes it over at once and executes it again with the same event id: it gets the
   original receipt if the commit landed, or appends it now if it did not, never both.

Recovery: a reservation still `pending` after `LEASE_SECONDS` (its owner died, or the
outage also failed the release) is stale: the next request with its key takes it over
(compare-and-set on the lease token), keeping the event id, and executes as in 3. A
process that gave a reservation up but could not mark it released remembers its token
(`services.http.writes`) and lets a retry take it over at once.
Answers are kept `RETENTION_SECONDS` (24 h) and pruned when a server starts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID, uuid4

import orjson

from ledger.encoding import RecordError, canonical_json
from ledger.errors import ConflictError, InvalidInputError
from projections.database import Database

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
MAX_KEY_CHARS: Final = 255
LEASE_SECONDS: Final = 60.0
WAIT_SECONDS: Final = 10.0
POLL_SECONDS: Final = 0.02
RETENTION_SECONDS: Final = 24 * 3600.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as HTTP field values allow


class IdempotencyClashError(ConflictError):
    """Refuse a key already used on this route with another body."""

    title = "Idempotency key reused"


class IdempotencyInProgressError(ConflictError):
    """Refuse a key whose first request has not finished yet."""

    title = "Idempotent request in progress"


class InvalidIdempotencyKeyError(InvalidInputError):
    """Refuse a key that is empty, too long or not visible ASCII."""

    title = "Invalid Idempotency-Key"


@dataclass(frozen=True)
class Reservation:
    """The right to execute a request: its slot, lease token and the event id to append."""

    slot: str
    token: str
    event_id: UUID


@dataclass(frozen=True)
class StoredAnswer:
    """A completed request's status and body, to answer again."""

    status: int
    body: bytes


@dataclass(frozen=True)
class Pending:
    """Another request holds the key and has not completed, or released it (`released`)."""

    token: str
    reserved_at: float
    released: bool = False

    def stale(self, now: float, lease_seconds: float = LEASE_SECONDS) -> bool:
        """Tell whether the key may be taken over: released, or held past its lease (s)."""
        return self.released or now - self.reserved_at > lease_seconds


Claim = Reservation | StoredAnswer | Pending


def check_key(key: str) -> str:
    """Return an Idempotency-Key if it is 1-255 visible ASCII characters."""
    if not _KEY.match(key):
        raise InvalidIdempotencyKeyError(
            f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_CHARS} visible ASCII characters"
        )
    return key


def slot_for(method: str, route: str, path_params: Mapping[str, Any], key: str) -> str:
    """Return the stored slot of a key in its scope: method, route template, path params."""
    scope = orjson.dumps(
        [method.upper(), route, {k: str(v) for k, v in path_params.items()}, key],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(scope).hexdigest()


def body_digest(raw: bytes) -> str:
    """Return the SHA-256 of a JSON body in RFC 8785 canonical form (empty body: `null`).

    Raises InvalidInputError when `raw` is neither JSON nor empty. Numbers JCS cannot
    carry (integers beyond 2**53) fall back to orjson with sorted keys, deterministic too.
    """
    try:
        value = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"the request body is not JSON: {error}") from None
    try:
        canonical = canonical_json(value)
    except RecordError:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyStore:
    """Keep reservations and answers in the ledger's database (table `api_idempotency`)."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.database = database
        self.clock = clock
        self.lease_seconds = lease_seconds

    def ensure_table(self) -> None:
        """Create the table if it does not exist (once per process)."""
        self.database.create_tables(
            "api_idempotency",
            [
                "CREATE TABLE IF NOT EXISTS api_idempotency ("
                " slot TEXT PRIMARY KEY,"
                " request_sha256 TEXT NOT NULL,"
                " token TEXT NOT NULL,"
                " state TEXT NOT NULL,"
                " reserved_at DOUBLE PRECISION NOT NULL,"
                " event_id TEXT,"
                " status INTEGER,"
                " body TEXT)"
            ],
        )

    def claim(self, slot: str, request_sha256: str) -> Claim:
        """Reserve `slot` for this request, or tell what holds it.

        Raises IdempotencyClashError if the slot was reserved with another body.
        """
        self.ensure_table()
        sql = self.database.sql
        token, event_id = secrets.token_hex(16), uuid4()
        with self.database.transaction() as cursor:
            cursor.execute(
                sql(
                    "INSERT INTO api_idempotency"
                    " (slot, request_sha256, token, state, reserved_at, event_id)"
                    " VALUES (?, ?, ?, 'pending', ?, ?)"
                    " ON CONFLICT (slot) DO NOTHING RETURNING slot"
                ),
                [slot, request_sha256, token, self.clock(), str(event_id)],
            )
            if cursor.fetchone() is not None:
                return Reservation(slot, token, event_id)
            cursor.execute(
                sql(
                    "SELECT request_sha256, token, state, reserved_at, status, body"
                    " FROM api_idempotency WHERE slot = ?"
                ),
                [slot],
            )
            row = cursor.fetchone()
        if row is None:  # pruned between the two statements: try again
            return self.claim(slot, request_sha256)
        stored_sha, held_token, state, reserved_at, status, body = row
        if stored_sha != request_sha256:
            raise IdempotencyClashError(
                f"this {IDEMPOTENCY_HEADER} was already used on this route with another body; "
                "use a new key for a new request"
            )
        if state == "done":
            return StoredAnswer(int(status), str(body).encode())
        return Pending(str(held_token), float(reserved_at), released=state == "released")

    def take_over(self, slot: str, stale: Pending) -> Reservation | None:
        """Take a released or stale reservation over, keeping its event id.

        Returns None if another request changed it first (ask `claim` again).
        """
        token = secrets.token_hex(16)
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "UPDATE api_idempotency SET token = ?, state = 'pending', reserved_at = ?,"
                    " event_id = COALESCE(event_id, ?)"  # a row stored before event ids
                    " WHERE slot = ? AND token = ? AND state IN ('pending', 'released')"
                    " RETURNING event_id"
                ),
                [token, self.clock(), str(uuid4()), slot, stale.token],
            )
            row = cursor.fetchone()
        return None if row is None else Reservation(slot, token, UUID(str(row[0])))

    def complete(self, reservation: Reservation, status: int, body: bytes) -> None:
        """Store the answer of a reserved request (no-op if it was taken over since)."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "UPDATE api_idempotency SET state = 'done', status = ?, body = ?"
                    " WHERE slot = ? AND token = ? AND state = 'pending'"
                ),
                [status, body.decode(), reservation.slot, reservation.token],
            )

    def release(self, reservation: Reservation) -> None:
        """Give a reservation up with its outcome unknown: the next request takes it over.

        The row and its event id stay, so whatever the outcome was, the retry appends
        that event at most once (a no-op if the reservation was taken over since).
        """
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "UPDATE api_idempotency SET state = 'released'"
                    " WHERE slot = ? AND token = ? AND state = 'pending'"
                ),
                [reservation.slot, reservation.token],
            )

    def prune(self) -> None:
        """Forget answers and reservations older than RETENTION_SECONDS."""
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql("DELETE FROM api_idempotency WHERE reserved_at < ?"),
                [self.clock() - RETENTION_SECONDS],
            )
