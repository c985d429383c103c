"""The consumer: `Subscriber` and `subscribe`, handling each record of a ledger topic once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from services.subscriber.messages import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    ConsentMessage,
    RecentIdentities,
    record_identity,
    servers_from_environment,
)

log = structlog.get_logger("consent_ledger.subscriber")


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
        servers = bootstrap_servers or servers_from_environment()
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
                        identity = record_identity(record)
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
                    identity = record_identity(record)
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
