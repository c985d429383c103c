"""The one SQL dialect adapter: connections, placeholders, DDL locks, driver errors.

The event store itself is opened by `eventsourcing` from the same URL; this module opens
the same database for the tables beside it, and holds the rules every SQL user shares:
- statements are written once with `?` placeholders, translated by `placeholders`;
- concurrent first runs serialise their DDL with `lock_ddl` (a PostgreSQL advisory
  lock; SQLite's write lock already serialises);
- `translate_driver_errors` turns a driver's sign of an unreachable store (sqlite3,
  psycopg, its pool, or `eventsourcing`'s wrappers: UNREACHABLE_ERRORS) into
  StoreUnavailableError, the one error entrypoints answer 503 / exit 69 to.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError

from ledger.errors import InvalidInputError, StoreUnavailableError

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    StoreOperationalError,
    StoreInterfaceError,
    sqlite3.OperationalError,
)
"""Driver-level signs that the store cannot be reached (not bugs, not constraint errors)."""
try:  # PostgreSQL's driver is a dependency, but SQLite deployments do not need it loaded
    import psycopg
    import psycopg_pool

    UNREACHABLE_ERRORS += (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg_pool.PoolTimeout,
    )
except ImportError:  # pragma: no cover - psycopg is installed with the package
    pass


POSTGRES_UNAVAILABLE: Final = "PostgreSQL is unavailable"
SQLITE_UNAVAILABLE: Final = "SQLite is unavailable"


def placeholders(dialect: str, statement: str) -> str:
    """Return `statement`, written with `?` placeholders, in the dialect's style.

    SQLite takes `?` as written; psycopg takes `%s`. Requires a statement holding no
    literal `?` or `%` of its own.
    """
    return statement if dialect == "sqlite" else statement.replace("?", "%s")


def lock_ddl(cursor: Cursor, dialect: str, schema: str, name: str) -> None:
    """Serialise DDL named `name` in `schema` across processes until the transaction ends.

    Two sessions running `CREATE … IF NOT EXISTS` of one object at once collide on
    PostgreSQL's catalogue unique index; a transaction-scoped advisory lock on
    (schema, name) queues them. SQLite's write lock already serialises DDL.
    """
    if dialect == "postgres":
        cursor.execute(_XACT_LOCK, [ddl_lock_key(schema, name)])


def ddl_lock_key(schema: str, name: str) -> str:
    """Return the advisory-lock key of the DDL `name` in `schema` (see lock_ddl)."""
    return f"consent-ledger:ddl:{schema}.{name}"


_XACT_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtext(%s))"


@contextmanager
def translate_driver_errors(message: str) -> Iterator[None]:
    """Raise StoreUnavailableError("<message>: <error>") for UNREACHABLE_ERRORS.

    `message` says what is unavailable, e.g. "PostgreSQL is unavailable".

    The one place a driver's outage becomes the ledger's error; everything else (a
    constraint violation, a programming error) passes through untouched.
    """
    try:
        yield
    except UNREACHABLE_ERRORS as error:
        raise StoreUnavailableError(f"{message}: {error}") from None


class Cursor(Protocol):
    """The part of a DB-API cursor the read models use."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any:
        """Run one statement."""
        ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        """Run one statement for many parameter rows."""
        ...

    def fetchone(self) -> Any:
        """Return the next row or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Return the remaining rows."""
        ...


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed `LEDGER_DATABASE_URL`: `sqlite:///path.db` or `postgresql://…[?schema=s]`."""

    dialect: str  # "sqlite" or "postgres"
    sqlite_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = "postgres"
    schema: str = "public"

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        """Parse a database URL; raise InvalidInputError naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            raw = url[len("sqlite://") :]
            if not raw.startswith("/") or raw == "/":
                raise InvalidInputError(
                    f"database URL {url!r}: want sqlite:///relative.db or sqlite:////abs/path.db"
                )
            return cls("sqlite", sqlite_path=Path(raw[1:]))
        if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            query = parse_qs(parts.query)
            schema = query.get("schema", ["public"])[0]
            if not _SCHEMA.match(schema):
                raise InvalidInputError(f"database URL: schema {schema!r} is not a plain name")
            return cls(
                "postgres",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
                schema=schema,
            )
        raise InvalidInputError(
            f"database URL {url!r}: want sqlite:///path.db or postgresql://user@host:port/db"
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """Return the `eventsourcing` environment that opens this database."""
        if self.dialect == "sqlite":
            assert self.sqlite_path is not None
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
        }

    def conninfo(self) -> str:
        """Return a libpq connection string (PostgreSQL only)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=self.dbname,
            connect_timeout=5,
            options=f"-c search_path={self.schema}",
        )


class Database:
    """Open transactions on the ledger's database for the tables beside the event store."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.dialect = url.dialect
        self._local = threading.local()
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._created: set[str] = set()
        self._created_lock = threading.Lock()

    def prepare(self) -> None:
        """Create the database's folder (SQLite) or schema (PostgreSQL) if missing."""
        if self.dialect == "sqlite":
            assert self.url.sqlite_path is not None
            self.url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            return
        import psycopg

        # First runs at once would collide in the catalog: serialise them.
        with (
            translate_driver_errors(POSTGRES_UNAVAILABLE),
            psycopg.connect(self.url.conninfo(), autocommit=True) as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            lock_ddl(cursor, "postgres", self.url.schema, "schema")
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.url.schema}"')

    def exists(self, table: str) -> bool:
        """Tell whether the database (file or schema) exists and holds `table`; create nothing.

        Requires `table` to be a plain table name.
        """
        if self.dialect == "sqlite":
            assert self.url.sqlite_path is not None
            if not self.url.sqlite_path.is_file():
                return False
            uri = f"{self.url.sqlite_path.resolve().as_uri()}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True)) as conn:
                row = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
                ).fetchone()
            return row is not None
        import psycopg

        with (
            translate_driver_errors(POSTGRES_UNAVAILABLE),
            psycopg.connect(self.url.conninfo(), autocommit=True) as conn,
        ):
            found = conn.execute(
                "SELECT to_regclass(%s)", [f'"{self.url.schema}"."{table}"']
            ).fetchone()
        return found is not None and found[0] is not None

    def create_tables(self, name: str, statements: Sequence[str]) -> None:
        """Run one component's idempotent DDL once per process, safe under concurrent starts.

        Requires `statements` to be idempotent (`CREATE … IF NOT EXISTS`, `ON CONFLICT DO
        NOTHING`). On PostgreSQL a transaction-scoped advisory lock per schema and `name`
        serialises first runs, whose concurrent `CREATE TABLE IF NOT EXISTS` would
        otherwise collide in the catalog.
        """
        if name in self._created:
            return
        with self._created_lock:
            if name in self._created:
                return
            with self.transaction() as cursor:
                lock_ddl(cursor, self.dialect, self.url.schema, name)
                for statement in statements:
                    cursor.execute(statement)
            self._created.add(name)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold a lock named `name` across processes (PostgreSQL advisory lock; SQLite: none).

        For DDL that other code runs in its own transactions (the event store's tables):
        two processes starting at once on a new schema would collide in the catalog.
        SQLite serialises DDL with its own database lock.
        """
        if self.dialect == "sqlite":
            yield
            return
        import psycopg

        key = ddl_lock_key(self.url.schema, name)
        with (
            translate_driver_errors(POSTGRES_UNAVAILABLE),
            psycopg.connect(self.url.conninfo(), autocommit=True) as conn,
        ):
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])

    def sql(self, statement: str) -> str:
        """Return `statement` with `?` placeholders in this dialect's style."""
        return placeholders(self.dialect, statement)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """Yield a cursor in one transaction; commit on success, roll back on error."""
        if self.dialect == "sqlite":
            with self._sqlite_transaction() as cursor:
                yield cursor
        else:
            with self._postgres_transaction() as cursor:
                yield cursor

    @contextmanager
    def _sqlite_transaction(self) -> Iterator[Cursor]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.url.sqlite_path is not None
            conn = sqlite3.connect(
                self.url.sqlite_path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        cursor = conn.cursor()
        with translate_driver_errors(SQLITE_UNAVAILABLE):
            cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cursor.close()

    @contextmanager
    def _postgres_transaction(self) -> Iterator[Cursor]:
        from psycopg_pool import ConnectionPool

        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url.conninfo(),
                    min_size=1,
                    max_size=8,
                    open=True,
                    timeout=5,
                    check=ConnectionPool.check_connection,
                )
        with (
            translate_driver_errors(POSTGRES_UNAVAILABLE),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            yield cursor

    def close(self) -> None:
        """Close every connection this object opened."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
