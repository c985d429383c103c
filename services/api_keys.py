"""API keys: random secrets shown once, stored only as SHA-256 hashes, each with one role.

A key is `cl_` followed by 32 random bytes in URL-safe base64 (256 bits), so a plain
SHA-256 of it cannot be brute-forced and needs no slow password hash. The table
`api_keys` lives in the ledger's database beside the event store, so every server of a
deployment sees the same keys. This module imports no web framework: the CLI and the
composition root use it without loading FastAPI.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from ledger.errors import InvalidInputError, NotFoundError
from ledger.instants import format_instant
from projections.database import Cursor, Database

KEY_PREFIX: Final = "cl_"
KEY_BYTES: Final = 32
MAX_KEY_CHARS: Final = 256  # longer bearer tokens are refused before any hashing
BOOTSTRAP_ADMIN_NAME: Final = "bootstrap-admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Role(StrEnum):
    """What a key may do; see `services.http.auth.Access` for the routes each role reaches."""

    WRITER = "writer"
    READER = "reader"
    AUDITOR = "auditor"
    ADMIN = "admin"
    DATA = "data"  # training pipelines: create snapshots, register datasets, read them


@dataclass(frozen=True)
class ApiKey:
    """A stored key's public facts (never the secret)."""

    name: str
    role: Role
    created_at: str


def key_digest(secret: str) -> str:
    """Return the lowercase hex SHA-256 under which a key is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    """Return a fresh key: the prefix and 32 random bytes, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


class ApiKeyStore:
    """Create and look up API keys in the ledger's database (table `api_keys`).

    Creating the table is deferred to first use, so wiring the store costs no I/O.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def ensure_table(self) -> None:
        """Create the key table if it does not exist (once per process)."""
        self.database.create_tables(
            "api_keys",
            [
                "CREATE TABLE IF NOT EXISTS api_keys ("
                " key_sha256 TEXT PRIMARY KEY,"
                " name TEXT NOT NULL,"
                " role TEXT NOT NULL,"
                " created_at TEXT NOT NULL)"
            ],
        )

    def create(self, name: str, role: str) -> tuple[ApiKey, str]:
        """Store a new key for `name` with `role`; return it and its secret (shown once).

        Raises InvalidInputError for a malformed name or an unknown role.
        """
        key = ApiKey(_check_name(name), _check_role(role), format_instant(datetime.now(UTC)))
        secret = new_secret()
        self.ensure_table()
        with self.database.transaction() as cursor:
            self._insert(cursor, key, secret)
        return key, secret

    def create_first_admin(self) -> tuple[ApiKey, str] | None:
        """Create an `admin` key if the ledger holds no key at all; return it, or None.

        The check and the insert share one transaction (PostgreSQL: under a table lock),
        so two servers starting at once on an empty table create one key between them.
        """
        self.ensure_table()
        key = ApiKey(BOOTSTRAP_ADMIN_NAME, Role.ADMIN, format_instant(datetime.now(UTC)))
        secret = new_secret()
        with self.database.transaction() as cursor:
            if self.database.dialect == "postgres":
                cursor.execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT COUNT(*) FROM api_keys")
            if int(cursor.fetchone()[0]) > 0:
                return None
            self._insert(cursor, key, secret)
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """Return the key whose secret this is, or None for an unknown or malformed one."""
        if not secret or len(secret) > MAX_KEY_CHARS:
            return None
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "SELECT name, role, created_at FROM api_keys WHERE key_sha256 = ?"
                ),
                [key_digest(secret)],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return ApiKey(str(row[0]), Role(str(row[1])), str(row[2]))

    def list(self) -> list[ApiKey]:
        """Return every key's public facts, by name then creation time (never a secret)."""
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute("SELECT name, role, created_at FROM api_keys ORDER BY name, created_at")
            rows = cursor.fetchall()
        return [ApiKey(str(name), Role(str(role)), str(created)) for name, role, created in rows]

    def revoke(self, name: str) -> int:
        """Delete every key named `name`; return how many. Raises UnknownKeyError if none.

        Servers refuse a revoked key within `services.http.auth.CACHE_SECONDS`.
        """
        self.ensure_table()
        with self.database.transaction() as cursor:
            sql = self.database.sql
            cursor.execute(sql("SELECT COUNT(*) FROM api_keys WHERE name = ?"), [name])
            count = int(cursor.fetchone()[0])
            cursor.execute(sql("DELETE FROM api_keys WHERE name = ?"), [name])
        if count == 0:
            raise UnknownKeyError(f"no API key is named {name!r}")
        return count

    def rotate(self, name: str) -> tuple[ApiKey, str]:
        """Replace the keys named `name` by one new key of the same role; return it and its secret.

        The old secrets stop working in the same transaction. Raises UnknownKeyError if
        no key has that name.
        """
        self.ensure_table()
        secret = new_secret()
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(
                    "SELECT role FROM api_keys WHERE name = ? ORDER BY created_at DESC"
                ),
                [name],
            )
            row = cursor.fetchone()
            if row is None:
                raise UnknownKeyError(f"no API key is named {name!r}")
            key = ApiKey(name, Role(str(row[0])), format_instant(datetime.now(UTC)))
            cursor.execute(self.database.sql("DELETE FROM api_keys WHERE name = ?"), [name])
            self._insert(cursor, key, secret)
        return key, secret

    def count(self) -> int:
        """Return how many keys are stored."""
        self.ensure_table()
        with self.database.transaction() as cursor:
            cursor.execute("SELECT COUNT(*) FROM api_keys")
            return int(cursor.fetchone()[0])

    def _insert(self, cursor: Cursor, key: ApiKey, secret: str) -> None:
        cursor.execute(
            self.database.sql(
                "INSERT INTO api_keys (key_sha256, name, role, created_at) VALUES (?, ?, ?, ?)"
            ),
            [key_digest(secret), key.name, key.role.value, key.created_at],
        )


class UnknownKeyError(NotFoundError):
    """Refuse to revoke or rotate a key name that no key has."""

    title = "Unknown API key"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(f"key name {name!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}")
    return name


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInputError(f"unknown role {role!r}; known roles: {known}") from None
