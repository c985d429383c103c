"""`Idempotency-Key` for writes: a repeated request answers the first answer again.

A key is scoped to its route: the method, the route template and the path parameters
(`POST /v1/subjects/{subject}/grants` for `artist-1` is another scope than for
`artist-2`). The body is compared by the SHA-256 of its RFC 8785 canonical JSON, so key
order and spacing do not matter. Same key, same body: the stored status and body again,
nothing appended. Same key, another body: 409.

How it stays right under concurrency and crashes (table `api_idempotency`):
1. **Reserve first.** The request inserts its slot (a hash of scope and key) under a
   primary key, state `pending`, with a random lease token. Of two concurrent requests
   one inserts; the other finds the row and waits (polling) for it to complete, then
   replays it; if it is still pending after `WAIT_SECONDS` it is told 409 "in progress".
2. **Record the intent before the commit.** The command names its event's id; just
   before the append transaction a hook stores it in the reservation (one statement per
   group-commit batch). So if the process dies after the append but before
   step 3, the reservation names the event that may exist.
3. **Complete.** After the append the status and body are stored (state `done`).
   A refusal by the ledger (4xx) is stored too and replayed, like an answer; a store
   outage (503) or a crash releases the reservation, since nothing was written.

Recovery: a reservation still pending after `LEASE_SECONDS` is stale (its owner died).
The next request with its key looks up the recorded event id: if the ledger holds that
event, the receipt is rebuilt from it and stored as the answer (no second append);
otherwise the request takes the reservation over (compare-and-set on the lease token)
and executes. The lease is far longer than the store's own timeouts, so a live owner
is never taken over in practice. Answers are kept `RETENTION_SECONDS` (24 h) and pruned
when a server starts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import orjson

from ledger.application import Receipt
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
    """The right to execute a request once: its slot and lease token."""

    slot: str
    token: str


@dataclass(frozen=True)
class StoredAnswer:
    """A completed request's status and body, to answer again."""

    status: int
    body: bytes


@dataclass(frozen=True)
class Pending:
    """Another request holds the key and has not completed."""

    token: str
    reserved_at: float
    event_id: str | None

    def stale(self, now: float, lease_seconds: float = LEASE_SECONDS) -> bool:
        """Tell whether the owner has held the key past its lease (seconds)."""
        return now - self.reserved_at > lease_seconds


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
    """Keep reservations and answers in the ledger's database (table `api_idempotency`).

    `find_receipt` answers, for an event id, the receipt of that event if the ledger
    holds it; it is used only to recover a reservation whose owner died.
    """

    def __init__(
        self,
        database: Database,
        find_receipt: Callable[[UUID], Receipt | None],
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.database = database
        self.find_receipt = find_receipt
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
        token = secrets.token_hex(16)
        with self.database.transaction() as cursor:
            cursor.execute(
                sql(
                    "INSERT INTO api_idempotency (slot, request_sha256, token, state, reserved_at)"
                    " VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (slot) DO NOTHING RETURNING slot"
                ),
                [slot, request_sha256, token, self.clock()],
            )
            if cursor.fetchone() is not None:
                return Reservation(slot, token)
            cursor.execute(
                sql(
                    "SELECT request_sha256, token, state, reserved_at, event_id, status, body"
                    " FROM api_idempotency WHERE slot = ?"
                ),
                [slot],
            )
            row = cursor.fetchone()
        if row is None:  # released between the two statements: try again
            return self.claim(slot, request_sha256)
        stored_sha, held_token, state, reserved_at, event_id, status, body = row
        if stored_sha != request_sha256:
            raise IdempotencyClashError(
                f"this {IDEMPOTENCY_HEADER} was already used on this route with another body; "
                "use a new key for a new request"
            )
        if state == "done":
            return StoredAnswer(int(status), str(body).encode())
        return Pending(str(held_token), float(reserved_at), event_id)

    def recover(self, slot: str, stale: Pending) -> Reservation | StoredAnswer | None:
        """Settle a stale reservation: answer its event if it was appended, else take it.

        Returns None if another request settled it first (ask `claim` again).
        """
        receipt = self.find_receipt(UUID(stale.event_id)) if stale.event_id else None
        sql = self.database.sql
        if receipt is not None:
            body = orjson.dumps(receipt.to_json())
            with self.database.transaction() as cursor:
                cursor.execute(
                    sql(
                        "UPDATE api_idempotency SET state = 'done', status = 201, body = ?"
                        " WHERE slot = ? AND token = ? AND state = 'pending' RETURNING slot"
                    ),
                    [body.decode(), slot, stale.token],
                )
                settled = cursor.fetchone() is not None
            return StoredAnswer(201, body) if settled else None
        token = secrets.token_hex(16)
        with self.database.transaction() as cursor:
            cursor.execute(
                sql(
                    "UPDATE api_idempotency SET token = ?, reserved_at = ?, event_id = NULL"
                    " WHERE slot = ? AND token = ? AND state = 'pending' RETURNING slot"
                ),
                [token, self.clock(), slot, stale.token],
            )
            taken = cursor.fetchone() is not None
        return Reservation(slot, token) if taken else None

    def record_intents(self, intents: list[tuple[Reservation, UUID]]) -> None:
        """Store, in one transaction, the event id each reservation is about to append."""
        with self.database.transaction() as cursor:
            cursor.executemany(
                self.database.sql(
                    "UPDATE api_idempotency SET event_id = ? WHERE slot = ? AND token = ?"
                ),
                [[str(event_id), r.slot, r.token] for r, event_id in intents],
            )

    def complete(self, reservation: Reservation, status: int, body: bytes) -> None:
        """Store the answer of a reserved request."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "UPDATE api_idempotency SET state = 'done', status = ?, body = ?"
                    " WHERE slot = ? AND token = ?"
                ),
                [status, body.decode(), reservation.slot, reservation.token],
            )

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose request wrote nothing, so the key can be used again."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "DELETE FROM api_idempotency WHERE slot = ? AND token = ? AND state = 'pending'"
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


class IntentRecorder:
    """Store the event ids of reserved writes just before they are appended.

    `add` buffers (reservation, event id); `flush`, the committer's pre-commit hook,
    stores the whole buffer in one statement (a later flush finds it empty).
    """

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self._buffer: list[tuple[Reservation, UUID]] = []
        self._lock = threading.Lock()

    def add(self, reservation: Reservation, event_id: UUID) -> None:
        """Buffer the id of the event a reserved write will record."""
        with self._lock:
            self._buffer.append((reservation, event_id))

    def flush(self) -> None:
        """Store every buffered intent; on failure keep them buffered and re-raise."""
        with self._lock:
            intents, self._buffer = self._buffer, []
        if not intents:
            return
        try:
            self.store.record_intents(intents)
        except BaseException:
            with self._lock:
                self._buffer[:0] = intents
            raise
