"""Subscribe to the ledger's Kafka topics from another team's service.

The relay delivers at least once: after a crash it publishes the unacknowledged tail
again. This library turns that into "each record handled once" for a consumer group:

- `subscribe(topics, group_id, handler)` (or `Subscriber.run`) calls `handler` once per
  record, in partition order, and commits a record's offset only after the handler
  returned. A handler that raises is retried (same record, exponential backoff) and
  nothing after it on that partition is handled first.
- Redelivered records are skipped by their `(position, seq)` headers: a record whose
  identity was among the last `dedupe_window` handled on its partition, or is older than
  all of them, is a repeat (the relay re-publishes only its unacknowledged tail, in
  ledger order). After a restart or a rebalance, that window is recovered by reading
  back the records just before the committed offset, so repeats are skipped across
  restarts too.
- On a rebalance, offsets of handled records are committed before the partitions go.
- `bootstrap_state()` reads the compacted `consent.permissions.v1` topic from the
  beginning into a `PermissionTable` of current permissions, which `apply` then keeps
  current from the permission changes.

Iterating a `Subscriber` yields the same deduplicated records; one is committed when the
next is asked for (or when iteration ends normally).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import orjson
import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from ledger.scopes import scope_text
from services.kafka.topics import TopicNames
from services.kafka.wire import (
    HEADER_EVENT_ID,
    HEADER_POSITION,
    HEADER_SCHEMA,
    HEADER_SEQ,
    HEADER_TYPE,
    SCHEMA_PERMISSION,
    SCHEMA_PERMISSION_CHANGE,
    decode_headers,
    permission_key,
)

DEFAULT_DEDUPE_WINDOW: Final = 10_000
DEFAULT_SESSION_TIMEOUT_MS: Final = 10_000
DEFAULT_HEARTBEAT_INTERVAL_MS: Final = 3_000

KAFKA_ENV: Final = "KAFKA_BOOTSTRAP_SERVERS"
"""Where the brokers are read from when none are passed (the ledger's own variable)."""

log = structlog.get_logger("consent_ledger.subscriber")


def _servers_from_environment() -> str | None:
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


def _record_identity(record: Any) -> Identity | None:
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


@dataclass
class SubscriberStats:
    """Counts since the subscriber started."""

    handled: int = 0
    duplicates: int = 0
    failures: int = 0
    commits: int = 0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.subscriber._on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.subscriber._on_assigned(set(assigned))


class Subscriber:
    """Consume ledger topics in a consumer group, handling each record once.

    Not thread-safe, except `stop()`, which may be called from any thread (or a signal
    handler). Single use: once stopped or closed it does not start again. Use as a
    context manager, or call `close()`.
    """

    def __init__(
        self,
        topics: Sequence[str],
        group_id: str,
        *,
        bootstrap_servers: str | None = None,
        auto_offset_reset: str = "earliest",
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        max_poll_records: int = 100,
        poll_timeout_ms: int = 100,
        fetch_max_wait_ms: int = 100,
        dedupe_window: int = DEFAULT_DEDUPE_WINDOW,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        client_id: str = "consent-ledger-subscriber",
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Configure the subscriber; it connects when first run or iterated.

        `bootstrap_servers` defaults to KAFKA_BOOTSTRAP_SERVERS. `auto_offset_reset`
        ("earliest" or "latest") applies only to a group with no committed offset.
        Requires at least one topic, dedupe_window >= 1 and positive retry delays.
        """
        if not topics:
            raise ValueError("subscribe to at least one topic")
        if dedupe_window < 1 or retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError(
                f"want dedupe_window >= 1 and 0 < retry_initial_s <= retry_max_s, got "
                f"{dedupe_window}, {retry_initial_s}, {retry_max_s}"
            )
        servers = bootstrap_servers or _servers_from_environment()
        if not servers:
            raise ValueError(
                "no Kafka broker: pass bootstrap_servers or set KAFKA_BOOTSTRAP_SERVERS"
            )
        self.topics = list(topics)
        self.group_id = group_id
        self.bootstrap_servers = servers
        self.dedupe_window = dedupe_window
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stats = SubscriberStats()
        self._config: dict[str, Any] = {
            "bootstrap_servers": servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_records": max_poll_records,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            # A consumer must not create a ledger topic: it would lack the relay's
            # settings (compaction). It waits for the relay to create it.
            "allow_auto_create_topics": False,
            **(consumer_options or {}),
        }
        self._consumer: KafkaConsumer | None = None
        self._active: Generator[ConsentMessage, bool | None, None] | None = None
        self._reader: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._recent: dict[TopicPartition, RecentIdentities] = {}
        self._needs_recovery: set[TopicPartition] = set()
        self._done: dict[TopicPartition, int] = {}
        self._log = log.bind(group_id=group_id)

    # ----------------------------------------------------------------- use

    def run(self, handler: Callable[[ConsentMessage], object]) -> None:
        """Call `handler` for each new record until `stop()`; retry it while it raises."""
        stream = self._active = self._stream()
        try:
            message = next(stream)
            while True:
                try:
                    handler(message)
                except Exception as error:  # any handler failure is retried below, never skipped
                    self.stats.failures += 1
                    self._log.warning(
                        "subscriber.handler_failed",
                        error=f"{type(error).__name__}: {error}",
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        position=message.position,
                        event_id=message.event_id,
                        subject=(message.value or {}).get("subject"),
                        exc_info=True,
                    )
                    message = stream.send(False)
                else:
                    message = stream.send(True)
        except StopIteration:
            pass
        finally:
            stream.close()
            self._active = None

    def __iter__(self) -> Iterator[ConsentMessage]:
        """Yield each new record; it counts as handled when the next one is asked for.

        Leaving the loop early leaves the last record unhandled: `close()` (or the end
        of the `with` block) commits the ones before it, and the group gets it again.
        """
        self._active = self._stream()
        return self._active

    def stop(self) -> None:
        """Ask `run` (or iteration) to return after the records in hand; thread-safe."""
        self._stop.set()

    def wait_until_assigned(self, timeout_s: float) -> bool:
        """Block until the group gave this subscriber partitions; False on timeout."""
        return self._assigned.wait(timeout_s)

    def assignment(self) -> set[TopicPartition]:
        """Return the partitions this subscriber holds now (empty before it joined)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def close(self) -> None:
        """Commit what was handled and leave the group (idempotent)."""
        self._stop.set()
        active, self._active = self._active, None
        if active is not None:
            active.close()  # runs its final commit while the consumer is still open
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self._commit(consumer)
            consumer.close(autocommit=False)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close(autocommit=False)

    def __enter__(self) -> Subscriber:
        """Return self; `close()` on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the subscriber."""
        self.close()

    # ------------------------------------------------------------ internals

    def _open(self) -> KafkaConsumer:
        if self._consumer is None:
            consumer = KafkaConsumer(**self._config)
            consumer.subscribe(self.topics, listener=_Rebalance(self))
            self._consumer = consumer
        return self._consumer

    def _stream(self) -> Generator[ConsentMessage, bool | None, None]:
        """Yield deduplicated records; `send(False)` says the last one failed."""
        consumer = self._open()
        backoff = self.retry_initial_s
        try:
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=self.poll_timeout_ms)
                failed = False
                for tp, records in polled.items():
                    for record in records:
                        if tp in self._needs_recovery:
                            self._recover(tp, record.offset)
                        identity = _record_identity(record)
                        recent = self._recent.setdefault(tp, RecentIdentities(self.dedupe_window))
                        if identity is not None and recent.is_repeat(identity):
                            self.stats.duplicates += 1
                            self._done[tp] = record.offset + 1
                            continue
                        ok = yield ConsentMessage.from_record(record)
                        if ok is False:
                            consumer.seek(tp, record.offset)  # fetch it again, then the rest
                            failed = True
                            break
                        if identity is not None:
                            recent.add(identity)
                        self._done[tp] = record.offset + 1
                        self.stats.handled += 1
                self._commit(consumer)
                if failed:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.retry_max_s)
                else:
                    backoff = self.retry_initial_s
        finally:
            self._commit(consumer)

    def _commit(self, consumer: KafkaConsumer) -> None:
        offsets = {
            tp: OffsetAndMetadata(offset, "", -1)
            for tp, offset in self._done.items()
            if tp in consumer.assignment()
        }
        self._done.clear()
        if not offsets:
            return
        try:
            consumer.commit(offsets)
            self.stats.commits += 1
        except KafkaError as error:
            # The group moved on (e.g. a rebalance this member missed): the new owner
            # starts from the last commit, and its read-back skips what we handled.
            self._log.warning("subscriber.commit_failed", error=f"{type(error).__name__}: {error}")

    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is not None:
            done = {tp: off for tp, off in self._done.items() if tp in revoked}
            if done:
                try:
                    consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
                    self.stats.commits += 1
                except KafkaError as error:
                    self._log.warning(
                        "subscriber.commit_on_revoke_failed",
                        error=f"{type(error).__name__}: {error}",
                    )
        for tp in revoked:
            self._done.pop(tp, None)
            self._recent.pop(tp, None)
            self._needs_recovery.discard(tp)
        self._log.info("subscriber.partitions_revoked", partitions=_names(revoked))

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._needs_recovery |= assigned
        self._log.info("subscriber.partitions_assigned", partitions=_names(assigned))
        if assigned:
            self._assigned.set()

    def _recover(self, tp: TopicPartition, first_offset: int) -> None:
        """Rebuild the partition's recent identities from the records before `first_offset`."""
        self._needs_recovery.discard(tp)
        recent = self._recent[tp] = RecentIdentities(self.dedupe_window)
        start = max(0, first_offset - self.dedupe_window)
        if first_offset == 0:
            return
        if self._reader is None:
            self._reader = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self._config['client_id']}-readback",
                enable_auto_commit=False,
                allow_auto_create_topics=False,
                fetch_max_wait_ms=50,
            )
        reader = self._reader
        reader.assign([tp])
        reader.seek(tp, start)
        deadline = time.monotonic() + 10.0
        while reader.position(tp) < first_offset and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200, max_records=1000).values():
                for record in records:
                    identity = _record_identity(record)
                    if record.offset < first_offset and identity is not None:
                        recent.seen.add(identity)
        recent.floor = min(recent.seen) if recent.seen else None
        self._log.info(
            "subscriber.recent_records_read_back",
            partition=f"{tp.topic}[{tp.partition}]",
            from_offset=start,
            to_offset=first_offset,
            identities=len(recent.seen),
        )


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def subscribe(
    topics: Sequence[str],
    group_id: str,
    handler: Callable[[ConsentMessage], object],
    *,
    bootstrap_servers: str | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> SubscriberStats:
    """Handle every record of `topics` once, for consumer group `group_id`, until `stop`.

    Blocks; returns the counts once `stop` is set (from another thread or a signal
    handler). `options` are `Subscriber`'s keyword arguments.
    """
    subscriber = Subscriber(topics, group_id, bootstrap_servers=bootstrap_servers, **options)
    if stop is not None:

        def relay_stop() -> None:
            stop.wait()
            subscriber.stop()

        threading.Thread(target=relay_stop, name="subscriber-stop", daemon=True).start()
    with subscriber:
        subscriber.run(handler)
    return subscriber.stats


# --------------------------------------------------------------------------- state


@dataclass
class PermissionTable:
    """Current permissions by `subject|purpose|party|scope`, as the ledger last published.

    Each value is the JSON of the record that set it (allowed, basis, position, …).
    `apply` folds in later records; an older position never overwrites a newer one.
    """

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    position: int = 0
    _removed_at: dict[str, int] = field(default_factory=dict)

    def apply(self, message: ConsentMessage) -> bool:
        """Fold a permissions record or a permission change in; return whether it applied."""
        if message.schema not in (SCHEMA_PERMISSION, SCHEMA_PERMISSION_CHANGE):
            return False
        position = message.position or 0
        if message.value is None:
            if message.key is None:
                return False
            key = message.key
        else:
            v = message.value
            key = permission_key(v["subject"], v["purpose"], v["party"], v["scope"])
        current = self.states.get(key)
        newest = current["position"] if current is not None else self._removed_at.get(key, 0)
        if position < newest:
            return False
        if message.value is None:
            self.states.pop(key, None)
            self._removed_at[key] = position
        else:
            self.states[key] = message.value
        self.position = max(self.position, position)
        return True

    def get(
        self,
        subject: str,
        purpose: str,
        party: str = "platform",
        content: str | None = None,
        aspect: str = "all",
    ) -> dict[str, Any] | None:
        """Return the state published for exactly this key, or None if there is none."""
        return self.states.get(permission_key(subject, purpose, party, scope_text(content, aspect)))

    def __len__(self) -> int:
        """Return how many keys hold a state."""
        return len(self.states)


def bootstrap_state(
    bootstrap_servers: str | None = None,
    *,
    topic: str = TopicNames().permissions,
    timeout_s: float = 30.0,
) -> PermissionTable:
    """Read the compacted permissions topic from the beginning into a PermissionTable.

    Reads up to the high-water mark each partition reported when it was first fetched
    (records produced meanwhile may be included). Raises TimeoutError if that takes
    longer than `timeout_s`.
    """
    servers = bootstrap_servers or _servers_from_environment()
    if not servers:
        raise ValueError("no Kafka broker: pass bootstrap_servers or set KAFKA_BOOTSTRAP_SERVERS")
    table = PermissionTable()
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        client_id="consent-ledger-bootstrap",
        enable_auto_commit=False,
        allow_auto_create_topics=False,
        fetch_max_wait_ms=50,
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        if not partitions:
            return table
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        # The high-water mark comes with fetch responses (ListOffsets is unreliable on
        # some brokers), so read until every partition's position has reached it.
        while True:
            for records in consumer.poll(timeout_ms=100, max_records=5000).values():
                for record in records:
                    table.apply(ConsentMessage.from_record(record))
            marks = [consumer.highwater(tp) for tp in partitions]
            if all(
                m is not None and consumer.position(tp) >= m
                for tp, m in zip(partitions, marks, strict=True)
            ):
                return table
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout_s}s")
    finally:
        consumer.close(autocommit=False)
