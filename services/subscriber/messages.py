"""The records a subscriber hands out, their identity, and the memory of recent ones."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from services.kafka.wire import (
    HEADER_EVENT_ID,
    HEADER_POSITION,
    HEADER_SCHEMA,
    HEADER_SEQ,
    HEADER_TYPE,
    decode_headers,
)

DEFAULT_DEDUPE_WINDOW: Final = 10_000
DEFAULT_SESSION_TIMEOUT_MS: Final = 10_000
DEFAULT_HEARTBEAT_INTERVAL_MS: Final = 3_000

KAFKA_ENV: Final = "KAFKA_BOOTSTRAP_SERVERS"
"""Where the brokers are read from when none are passed (the ledger's own variable)."""


def servers_from_environment() -> str | None:
    """Return `$KAFKA_BOOTSTRAP_SERVERS`, or None if unset or empty.

    The library reads the variable itself rather than through `services.settings`: it is
    installed by other teams without the ledger's configuration and database code.
    """
    return os.environ.get(KAFKA_ENV) or None


Identity = tuple[int, int]
"""A record's `(position, seq)`: unique on its topic, increasing along each partition."""


@dataclass(frozen=True)
class ConsentMessage:
    """One record of a ledger topic: where it was, its key, JSON value and headers.

    `value` is None for a tombstone (the permissions topic, on erasure).
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any] | None
    headers: Mapping[str, str]

    @property
    def position(self) -> int | None:
        """Return the ledger position (a checkpoint's tree size), None if absent."""
        raw = self.headers.get(HEADER_POSITION)
        return int(raw) if raw and raw.isdigit() else None

    @property
    def seq(self) -> int:
        """Return the record's number among those its event put on this topic."""
        raw = self.headers.get(HEADER_SEQ, "0")
        return int(raw) if raw.isdigit() else 0

    @property
    def identity(self) -> Identity | None:
        """Return `(position, seq)`, or None for a record without a position header."""
        position = self.position
        return None if position is None else (position, self.seq)

    @property
    def event_id(self) -> str | None:
        """Return the id of the ledger event that caused the record."""
        return self.headers.get(HEADER_EVENT_ID)

    @property
    def type(self) -> str | None:
        """Return the type of the ledger event that caused the record."""
        return self.headers.get(HEADER_TYPE)

    @property
    def schema(self) -> str | None:
        """Return the schema id of the value (see services.kafka.wire)."""
        return self.headers.get(HEADER_SCHEMA)

    @property
    def is_tombstone(self) -> bool:
        """Tell whether the record deletes its key (a null value)."""
        return self.value is None

    @classmethod
    def from_record(cls, record: Any) -> ConsentMessage:
        """Decode a kafka-python ConsumerRecord (JSON value, text key and headers)."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if record.key is not None else None,
            value=orjson.loads(record.value) if record.value is not None else None,
            headers=decode_headers(record.headers or ()),
        )


def record_identity(record: Any) -> Identity | None:
    """Return a consumed record's `(position, seq)` from its headers, or None without them."""
    found = decode_headers(record.headers or ())
    position, seq = found.get(HEADER_POSITION, ""), found.get(HEADER_SEQ, "0")
    if not position.isdigit():
        return None
    return int(position), int(seq) if seq.isdigit() else 0


@dataclass
class RecentIdentities:
    """The identities handled lately on one partition: the newest `window`, and a floor.

    A record is a repeat if its identity is among them or below the floor (older than
    every one kept). Requires window >= 1. Holds at most 2 * window identities.
    """

    window: int
    seen: set[Identity] = field(default_factory=set)
    floor: Identity | None = None

    def is_repeat(self, identity: Identity) -> bool:
        """Tell whether a record with this identity was handled already."""
        return identity in self.seen or (self.floor is not None and identity < self.floor)

    def add(self, identity: Identity) -> None:
        """Remember a handled identity, forgetting the oldest beyond the window."""
        self.seen.add(identity)
        if len(self.seen) > 2 * self.window:
            kept = sorted(self.seen)[-self.window :]
            self.seen, self.floor = set(kept), kept[0]
