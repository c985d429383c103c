"""Helpers of the transparency-log tests: a small ledger history, and raw store tampering.

Tampering goes around the ledger on purpose, with the database's own driver, the way an
attacker (or a bad migration) would change the stored events table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from ledger.application import ConsentLedger, Receipt
from ledger.instants import parse_instant
from services.bootstrap import Services, bootstrap
from services.settings import Settings

WEB = {"channel": "web", "method": "settings-toggle"}
# replacement bytes: printable ASCII, a quote, a newline, a NUL and a byte that is not UTF-8
TAMPER_ALPHABET = bytes(range(0x20, 0x7F)) + b'"\n\x00\xff'


def export_sqlite_ledger(base: Path, subjects: int) -> tuple[Path, bytes]:
    """Populate a SQLite ledger under base, export it; return the export and the public key."""
    from projections.export import export_ledger

    services = bootstrap(
        Settings(database_url=f"sqlite:///{base / 'ledger.db'}", data_dir=base / "data")
    )
    try:
        populate(services.ledger, subjects=subjects)
        services.log.catch_up()
        export_ledger(services.log, base / "out")
        return base / "out", services.log.key.public_key_raw()
    finally:
        services.close()


def personal(n: int) -> dict[str, str]:
    """Return evidence with personal data (sealed by the ledger) for the n-th write."""
    return {**WEB, "ip": f"203.0.113.{n}", "email": f"artist{n}@example.com"}


def populate(ledger: ConsentLedger, subjects: int = 3) -> list[Receipt]:
    """Record terms, then per subject an acceptance, a grant with evidence and a revocation."""
    receipts = [
        ledger.publish_terms(
            "2025-05",
            parse_instant("2025-05-14"),
            [{"purpose": "ai-training", "default": "denied"}],
        )
    ]
    for n in range(subjects):
        subject = f"artist-{n}"
        receipts.append(ledger.accept_terms(subject, "2025-05", evidence=personal(n)))
        receipts.append(
            ledger.grant(subject, "ai-generative-training", aspect="voice", evidence=personal(n))
        )
        receipts.append(ledger.revoke(subject, "ai-training", content_ids=[f"track-{n}"]))
    return receipts


@contextmanager
def raw_store(services: Services) -> Iterator[tuple[Any, str, str]]:
    """Yield (connection, events table, position column) of the event store, committing after."""
    url = services.database.url
    table = services.ledger.recorder.events_table_name  # type: ignore[attr-defined]
    if url.dialect == "sqlite":
        assert url.sqlite_path is not None
        conn = sqlite3.connect(url.sqlite_path)
        try:
            yield conn, table, "rowid"
            conn.commit()
        finally:
            conn.close()
        return
    with psycopg.connect(url.conninfo()) as pg:  # search_path is the test's schema
        yield pg, table, "notification_id"
        pg.commit()


def _q(services: Services, sql: str) -> str:
    return services.database.sql(sql)


def read_state(services: Services, position: int) -> bytes:
    """Return the stored state bytes of the event at a position."""
    with raw_store(services) as (conn, table, column):
        row = conn.execute(
            _q(services, f"SELECT state FROM {table} WHERE {column} = ?"), [position]
        ).fetchone()
    return bytes(row[0])


def write_state(services: Services, position: int, state: bytes) -> None:
    """Overwrite the stored state bytes of the event at a position."""
    with raw_store(services) as (conn, table, column):
        conn.execute(
            _q(services, f"UPDATE {table} SET state = ? WHERE {column} = ?"), [state, position]
        )


def flip_byte(services: Services, position: int, marker: bytes, offset: int = 0) -> None:
    """Change one byte of a stored event: the one `offset` after the end of `marker`."""
    state = bytearray(read_state(services, position))
    at = state.index(marker) + len(marker) + offset
    state[at] = state[at] ^ 0x01
    write_state(services, position, bytes(state))


def delete_row(services: Services, position: int) -> None:
    """Delete the stored event at a position."""
    with raw_store(services) as (conn, table, column):
        conn.execute(_q(services, f"DELETE FROM {table} WHERE {column} = ?"), [position])


def swap_rows(services: Services, first: int, second: int) -> None:
    """Exchange the positions of two stored events (reorder the ledger)."""
    with raw_store(services) as (conn, table, column):
        for old, new in ((first, -1), (second, first), (-1, second)):
            conn.execute(
                _q(services, f"UPDATE {table} SET {column} = ? WHERE {column} = ?"), [new, old]
            )
