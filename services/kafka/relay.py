# long module: the relay loop, publisher, pipeline and stored position make one guarantee
"""The relay: tail the ledger in order and publish it to Kafka, at least once.

`Relay` reads the committed ledger after its stored position, derives each entry's
records (the event, the effective-permission changes it causes, the new current states
or erasure tombstones: see `services.kafka.wire`), publishes the batch with an
idempotent `acks=all` producer and waits for the broker to acknowledge every record.
Only then does it store the batch's last position in the `relay_positions` table of the
ledger's database. A crash, a kill or a broker outage at any point therefore loses
nothing: the relay starts again from the stored position and publishes the unstored
tail again (consumers deduplicate by the `position` and `seq` headers).

Ledger writes never touch Kafka: the relay is a separate reader of the committed log,
so a broker that is down delays publication but never blocks or fails a write. While it
is down, the relay retries with exponential backoff and logs each failed attempt.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata

from ledger.application import ConsentLedger
from ledger.backoff import Backoff
from ledger.errors import ErrorKind, InvalidInputError, LedgerError, StoreUnavailableError
from ledger.events import ContentRegistered, Entry, EventVoided, LedgerEvent, SubjectEvent
from projections.database import Database, translate_driver_errors
from projections.permission_changes import PermissionChangeDeriver, SubjectStep
from projections.snapshots.lineage import Lineage
from projections.work_changes import work_changes
from services.kafka import DEFAULT_BATCH_SIZE, DEFAULT_POLL_INTERVAL_S
from services.kafka.pipeline import LedgerBatches, PreparedBatch
from services.kafka.records import dataset_impact_records, entry_records, work_change_records
from services.kafka.topics import (
    DEFAULT_PARTITIONS,
    TopicNames,
    TopicSetupError,
    ensure_topics,
    require_listening,
)
from services.kafka.wire import OutgoingRecord, checkpoint_record

if TYPE_CHECKING:
    from services.bootstrap import Services
    from services.settings import Settings

POSITIONS_TABLE: Final = "relay_positions"
LEDGER_UNAVAILABLE: Final = "the ledger database is unavailable"  # how an outage is reported
DEFAULT_DELIVERY_TIMEOUT_S: Final = 10.0
DEFAULT_PIPELINE_DEPTH: Final = 0  # measured no faster on 2 cores (docs/benchmarks.md, issue 14)
PRODUCER_DELIVERY: Final[Mapping[str, Any]] = {
    # The producer settings that decide delivery and order; the benchmark's ceiling
    # (bench/relay.py) produces with these very settings.
    "enable_idempotence": True,
    "acks": "all",
    "max_in_flight_requests_per_connection": 1,  # ledger order per partition, also on retry
    "linger_ms": 0,
}

log = structlog.get_logger("consent_ledger.relay")


class PublishError(LedgerError):
    """Signal that the broker did not acknowledge a batch; its position was not stored."""

    kind = ErrorKind.UNAVAILABLE
    title = "Broker unavailable"


class CheckpointSource(Protocol):
    """Provide the Merkle log's signed checkpoints for the checkpoints topic."""

    def checkpoints_after(self, tree_size: int) -> Sequence[Mapping[str, Any]]:
        """Return the signed checkpoints with a tree size above `tree_size`, ascending.

        Each is the BRIEF §5 `checkpoint.json` object: at least `log_id` and `tree_size`.
        """
        ...


class Publisher(Protocol):
    """Publish a batch of records and return only once the broker acknowledged all."""

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish `records` in order; raise PublishError unless every one was acked."""
        ...

    def close(self) -> None:
        """Release the connection to the broker."""
        ...


@dataclass(frozen=True)
class Acks:
    """The broker's pending acknowledgements of records handed to `KafkaPublisher.send`."""

    futures: list[FutureRecordMetadata]

    def done(self) -> bool:
        """Tell whether every record has its answer (an acknowledgement or a failure)."""
        return all(future.is_done for future in self.futures)


class RelayPositions:
    """Store, per topic set, the last position the broker acknowledged (the relay's cursor).

    Rows are named by topic (the events topic holds a ledger position, the checkpoints
    topic a tree size), so relays publishing to differently named topics do not share
    a cursor.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        """Create the table if it does not exist."""
        self.database.create_tables(
            POSITIONS_TABLE,
            [
                f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} ("
                "name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TEXT NOT NULL)"
            ],
        )

    def get(self, name: str) -> int:
        """Return the stored position for `name`, 0 if none was stored yet."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = ?"),
                [name],
            )
            row = cursor.fetchone()
        return int(row[0]) if row is not None else 0

    def store(self, positions: Mapping[str, int]) -> None:
        """Store several positions in one transaction (insert or update)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.database.transaction() as cursor:
            cursor.executemany(
                self.database.sql(
                    f"INSERT INTO {POSITIONS_TABLE} (name, position, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                    "updated_at = excluded.updated_at"
                ),
                [[name, position, now] for name, position in positions.items()],
            )


class KafkaPublisher:
    """Publish with kafka-python: idempotent, `acks=all`, one request in flight.

    `publish` sends and waits; `send` and `confirm` split the two, so that the relay can
    hand over the next batch while the broker acknowledges this one.

    The producer and the topics are set up on first use and again after any failure
    (a restarted broker may have lost its topics, and a producer id it no longer knows).
    `max_in_flight_requests_per_connection=1` keeps each partition in ledger order even
    across retries, which the subscriber's deduplication relies on.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        names: TopicNames,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        client_id: str = "consent-ledger-relay",
    ) -> None:
        """Configure the publisher; nothing connects until the first `publish`.

        Requires delivery_timeout_s >= 2 (it bounds how long a batch may wait for acks).
        """
        if delivery_timeout_s < 2:
            raise ValueError(f"delivery_timeout_s must be >= 2, got {delivery_timeout_s}")
        self.bootstrap_servers = bootstrap_servers
        self.names = names
        self.partitions = partitions
        self.delivery_timeout_s = delivery_timeout_s
        self.client_id = client_id
        self._producer: KafkaProducer | None = None

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Send `records` in order and wait for every acknowledgement; PublishError if not."""
        acks = self.send(records)
        with self._failures_dropped():
            if self._producer is not None:
                # flush, not `confirm`: it also makes every buffered batch ready at once
                self._producer.flush(timeout=self.delivery_timeout_s + 1)
            for future in acks.futures:
                if not future.is_done:
                    raise PublishError(
                        f"broker did not acknowledge within {self.delivery_timeout_s}s"
                    )
                if future.failed():
                    raise PublishError(f"broker refused a record: {future.exception!r}")

    def send(self, records: Sequence[OutgoingRecord]) -> Acks:
        """Hand `records` to the producer in order, without waiting; PublishError if it fails.

        The returned acknowledgements go to `confirm`; records sent later on the same
        producer follow these on each partition.
        """
        with self._failures_dropped():
            producer = self._connect()
            return Acks(
                [
                    producer.send(r.topic, key=r.key, value=r.value, headers=list(r.headers))
                    for r in records
                ]
            )

    def confirm(self, acks: Acks) -> None:
        """Wait until the broker acknowledged every record of `acks`; PublishError if not."""
        with self._failures_dropped():
            deadline = time.monotonic() + self.delivery_timeout_s + 1
            for future in acks.futures:
                if not future.is_done:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
                if future.failed():
                    raise PublishError(f"broker refused a record: {future.exception!r}")

    @contextmanager
    def _failures_dropped(self) -> Iterator[None]:
        try:
            yield
        except PublishError:
            self._drop()
            raise
        except KafkaTimeoutError:
            self._drop()
            raise PublishError(
                f"broker did not acknowledge within {self.delivery_timeout_s}s"
            ) from None
        except (KafkaError, OSError, TopicSetupError) as error:
            self._drop()
            raise PublishError(
                f"cannot publish to {self.bootstrap_servers}: {type(error).__name__}: {error}"
            ) from None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            timeout_ms = int(self.delivery_timeout_s * 1000)
            # A TCP probe fails in a second when nothing listens, where the admin
            # client would wait for its 30 s bootstrap timeout.
            require_listening(self.bootstrap_servers, timeout_s=1.0)
            ensure_topics(
                self.bootstrap_servers,
                self.names,
                partitions=self.partitions,
                timeout_s=self.delivery_timeout_s / 2,
            )
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                allow_auto_create_topics=False,  # ensure_topics made them, with settings
                request_timeout_ms=timeout_ms // 2,
                delivery_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms // 2,
                bootstrap_timeout_ms=timeout_ms // 2,
                reconnect_backoff_max_ms=1000,
                **PRODUCER_DELIVERY,
            )
        return self._producer

    def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=0)

    def close(self) -> None:
        """Close the producer, giving unsent records a few seconds."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)


@dataclass(frozen=True)
class RelayOptions:
    """How the relay batches, polls and backs off (seconds)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    pipeline_depth: int = DEFAULT_PIPELINE_DEPTH
    """Batches `run` keeps sent but unacknowledged, at most; 0 prepares, sends and
    confirms one batch at a time (as `publish_batch` always does)."""

    def __post_init__(self) -> None:
        """Refuse a batch size below 1, a negative depth or non-positive intervals
        (InvalidInputError)."""
        if self.batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.pipeline_depth < 0:
            raise InvalidInputError(f"pipeline depth must be >= 0, got {self.pipeline_depth}")
        intervals = (self.poll_interval_s, self.backoff_initial_s, self.backoff_max_s)
        if min(intervals) <= 0:
            raise InvalidInputError(f"poll interval and backoffs must be positive, got {intervals}")


@dataclass
class RelayStats:
    """Counts of one relay run."""

    events: int = 0
    records: int = 0
    batches: int = 0
    failures: int = 0
    position: int = 0

    def to_json(self) -> dict[str, int]:
        """Return the counts as printed by `consent-ledger relay --json`."""
        return {
            "events": self.events,
            "records": self.records,
            "batches": self.batches,
            "failures": self.failures,
            "position": self.position,
        }


@dataclass
class Relay:
    """Publish the ledger to the four topics, storing its position after each acked batch."""

    ledger: ConsentLedger
    positions: RelayPositions
    publisher: Publisher
    names: TopicNames
    checkpoints: CheckpointSource | None = None
    lineage: Lineage | None = None  # registered datasets: publish their impacts
    options: RelayOptions = field(default_factory=RelayOptions)
    stats: RelayStats = field(default_factory=RelayStats)

    def __post_init__(self) -> None:
        """Prepare the derivation (its cache lives as long as the relay)."""
        self._deriver = PermissionChangeDeriver(self.ledger.vocabulary)
        self._position: int | None = None
        self._tree_size: int | None = None

    def position(self) -> int:
        """Return the last ledger position the broker acknowledged (stored)."""
        if self._position is None:
            self._position = self.positions.get(self.names.events)
        return self._position

    def publish_batch(self) -> int:
        """Publish the next batch; return how many ledger events it held (0: caught up).

        Raises PublishError if the broker did not acknowledge it and
        StoreUnavailableError if the ledger's database cannot be read; either way the
        stored position is unchanged.
        """
        after = self.position()
        with translate_driver_errors(LEDGER_UNAVAILABLE):
            entries = self.ledger.entries_after(after, self.options.batch_size)
            checkpoints = self._pending_checkpoints()
            if not entries and not checkpoints:
                return 0
            records = self.records_for(entries)
        records += [checkpoint_record(c, self.names) for c in checkpoints]
        started = time.perf_counter()
        self.publisher.publish(records)
        first = entries[0].position if entries else None
        last = entries[-1].position if entries else None
        self._acknowledged(first, last, len(entries), records, _tree_size(checkpoints), started)
        return len(entries)

    def _acknowledged(
        self,
        first: int | None,
        last: int | None,
        events: int,
        records: Sequence[OutgoingRecord],
        tree_size: int | None,
        started: float,
    ) -> None:
        """Store the positions of a batch the broker acknowledged; count and log it."""
        stored: dict[str, int] = {}
        if last is not None:
            stored[self.names.events] = last
        if tree_size is not None:
            stored[self.names.checkpoints] = tree_size
        self.positions.store(stored)
        if last is not None:
            self._position = last
        if tree_size is not None:
            self._tree_size = tree_size
        self.stats.events += events
        self.stats.records += len(records)
        self.stats.batches += 1
        self.stats.position = self.position()
        log.info(
            "relay.batch_published",
            first_position=first,
            position=self._position,
            events=events,
            records=len(records),
            checkpoints=sum(r.topic == self.names.checkpoints for r in records),
            publish_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def _pending_checkpoints(self, after: int | None = None) -> list[Mapping[str, Any]]:
        """Return the checkpoints above `after` (default: the stored tree size), ascending."""
        if self.checkpoints is None:
            return []
        if self._tree_size is None:
            self._tree_size = self.positions.get(self.names.checkpoints)
        found = self.checkpoints.checkpoints_after(self._tree_size if after is None else after)
        return sorted(found, key=lambda c: int(c["tree_size"]))

    def records_for(self, entries: Sequence[Entry]) -> list[OutgoingRecord]:
        """Return the records of `entries`, in ledger order (pure given the ledger)."""
        subjects = {e.event.subject for e in entries if isinstance(e.event, SubjectEvent)}
        histories = {subject: self.ledger.subject_entries(subject) for subject in subjects}
        indexes = {
            subject: {entry.position: i for i, entry in enumerate(history)}
            for subject, history in histories.items()
        }
        terms = self.ledger.terms_catalog() if subjects else {}
        works = self.ledger.works_of(subjects) if subjects else {}

        def history_of(subject: str) -> list[Entry]:
            if subject not in histories:
                histories[subject] = self.ledger.subject_entries(subject)
            return histories[subject]

        in_datasets = (
            self.lineage.datasets.datasets_of(sorted(subjects))
            if self.lineage is not None and subjects
            else {}
        )
        records: list[OutgoingRecord] = []
        for entry in entries:
            event = entry.event
            voided: LedgerEvent | None = None
            if isinstance(event, SubjectEvent):
                history = histories[event.subject]
                index = indexes[event.subject].get(entry.position)
                if index is None:
                    raise StoreUnavailableError(
                        f"entry at position {entry.position} is missing from the history "
                        f"of subject {event.subject!r}; the store changed under the relay"
                    )
                step = self._deriver.step(history, index, terms)
                if isinstance(event, EventVoided):
                    voided = next(
                        (
                            e.event
                            for e in history[:index]
                            if e.event.event_id == event.voided_event_id
                        ),
                        None,
                    )
            else:
                step = SubjectStep(entry, None)
            records.extend(entry_records(step, self.names, voided))
            if isinstance(event, SubjectEvent):
                touched = set(works.get(event.subject, ()))
                if isinstance(event, ContentRegistered):
                    touched.add((event.subject, event.content_id))
                if touched:
                    changed = work_changes(
                        entry, touched, history_of, terms, self.ledger.vocabulary
                    )
                    records.extend(
                        work_change_records(entry, changed, self.names, len(step.changes))
                    )
            if isinstance(event, SubjectEvent) and event.subject in in_datasets:
                assert self.lineage is not None
                assert index is not None
                impacts = self.lineage.entry_impacts(
                    history, index, terms, in_datasets[event.subject]
                )
                records.extend(
                    dataset_impact_records(
                        entry, [(d.event, i.to_json()) for d, i in impacts], self.names
                    )
                )
            log.debug(
                "relay.event_prepared",
                event_id=str(event.event_id),
                position=entry.position,
                subject=step.subject,
                changes=len(step.changes),
            )
        return records

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        until_caught_up: bool = False,
        give_up_after_s: float | None = None,
    ) -> RelayStats:
        """Publish batches until `stop` is set, retrying failures with backoff.

        With `until_caught_up`, return once the ledger position read at the start has
        been published. With `give_up_after_s`, re-raise the failure (PublishError or
        StoreUnavailableError) once attempts have failed for that long. With
        `options.pipeline_depth` and `settings`, batches are prepared in a child process
        and sent while earlier ones wait for their acknowledgement (`_Pipeline`); before
        returning, what is in flight is confirmed and stored, or left to the next run.
        """
        stop = stop or threading.Event()
        with translate_driver_errors(LEDGER_UNAVAILABLE):
            target = self.ledger.ledger_position() if until_caught_up else None
        options = self.options
        pipeline = _Pipeline(self) if options.pipeline_depth else None
        step = pipeline.step if pipeline is not None else self.publish_batch
        initial_s = min(options.backoff_initial_s, options.backoff_max_s)
        retrying = Backoff(initial_s, options.backoff_max_s).retrying()
        failing_since: float | None = None
        log.info("relay.started", position=self._safe_position(), topics=list(self.names.all()))
        try:
            while not stop.is_set():
                attempt_started = time.monotonic()
                try:
                    published = step()
                except (PublishError, StoreUnavailableError) as error:
                    now = time.monotonic()
                    failing_since = failing_since if failing_since is not None else attempt_started
                    self.stats.failures += 1
                    if give_up_after_s is not None and now - failing_since >= give_up_after_s:
                        log.error("relay.giving_up", error=error.detail, position=self._position)
                        raise
                    pause = retrying.failed()
                    log.warning(
                        "relay.publish_failed",
                        error=error.detail,
                        position=self._position,
                        retry_in_s=round(pause, 3),
                        failing_for_s=round(now - failing_since, 3),
                    )
                    stop.wait(pause)
                    continue
                if failing_since is not None:
                    log.info(
                        "relay.recovered",
                        position=self._position,
                        outage_s=round(time.monotonic() - failing_since, 3),
                    )
                    failing_since = None
                    retrying.succeeded()
                if target is not None and self.position() >= target:
                    break
                if published == 0:
                    stop.wait(self.options.poll_interval_s)
        finally:
            if pipeline is not None:
                pipeline.finish()
        self.stats.position = self._safe_position()
        log.info("relay.stopped", **self.stats.to_json())
        return self.stats

    def _safe_position(self) -> int:
        try:
            return self.position()
        except StoreUnavailableError:
            return self._position or 0

    def close(self) -> None:
        """Close the publisher."""
        self.publisher.close()


def _tree_size(checkpoints: Sequence[Mapping[str, Any]]) -> int | None:
    return max((int(c["tree_size"]) for c in checkpoints), default=None)


@dataclass
class _InFlight:
    """A batch handed to the producer (or, with `acks` None, to be handed again)."""

    batch: PreparedBatch | None
    tree_size: int | None
    records: list[OutgoingRecord]
    started: float
    acks: Acks | None = None


class _Pipeline:
    """Run's pipelined step: prepare the next batch while earlier ones are in flight.

    Batches are sent in ledger order on one producer (so each partition receives them in
    order) and their positions stored strictly in that order, each once every record up
    to it is acknowledged. A failure keeps every unstored batch; the next step sends them
    all again, oldest first, before anything new: a crash or an outage re-sends, never
    skips.
    """

    def __init__(self, relay: Relay) -> None:
        if not isinstance(relay.publisher, KafkaPublisher):
            raise TypeError(f"a pipelined relay needs a KafkaPublisher, got {relay.publisher!r}")
        self.relay = relay
        self.publisher: KafkaPublisher = relay.publisher
        self.depth = relay.options.pipeline_depth
        self.source = LedgerBatches(
            relay.ledger.entries_after,
            relay.records_for,
            relay.position(),
            relay.options.batch_size,
        )
        self.flight: deque[_InFlight] = deque()
        self.sent_tree_size: int | None = None

    def step(self) -> int:
        """Send the next batch if there is room, else (or if there is none) wait for the
        oldest's acknowledgement; store what is acknowledged. Return the events stored,
        or 1 when a batch was only sent: 0 means idle (nothing new, nothing in flight)."""
        try:
            for item in self.flight:  # after a failure: everything unstored, in order
                if item.acks is None:
                    item.acks = self.publisher.send(item.records)
            sent = len(self.flight) < self.depth and self._send_next()
            if not sent and self.flight:
                oldest = self.flight[0].acks
                assert oldest is not None
                self.publisher.confirm(oldest)
            stored = self._store_done()
        except PublishError:
            for item in self.flight:
                item.acks = None
            raise
        return stored or int(sent)

    def _send_next(self) -> bool:
        relay = self.relay
        with translate_driver_errors(LEDGER_UNAVAILABLE):
            batch = self.source.take()
            checkpoints = relay._pending_checkpoints(self.sent_tree_size)
        if batch is None and not checkpoints:
            return False
        records = list(batch.records) if batch is not None else []
        records += [checkpoint_record(c, relay.names) for c in checkpoints]
        tree_size = _tree_size(checkpoints)
        if tree_size is not None:
            self.sent_tree_size = tree_size
        item = _InFlight(batch, tree_size, records, time.perf_counter())
        self.flight.append(item)
        item.acks = self.publisher.send(records)
        return True

    def _store_done(self) -> int:
        """Store every leading batch whose records are all acknowledged; return its events."""
        events = 0
        while self.flight and self.flight[0].acks is not None and self.flight[0].acks.done():
            item = self.flight[0]
            assert item.acks is not None
            self.publisher.confirm(item.acks)  # done: raises at once if a record failed
            self.flight.popleft()
            batch = item.batch
            self.relay._acknowledged(
                batch.first_position if batch else None,
                batch.last_position if batch else None,
                batch.events if batch else 0,
                item.records,
                item.tree_size,
                item.started,
            )
            events += batch.events if batch else 0
        return events

    def finish(self) -> None:
        """Confirm and store what is in flight (left unstored if the broker fails); stop
        the child."""
        try:
            while self.flight and self.flight[0].acks is not None:
                oldest = self.flight[0].acks
                assert oldest is not None
                self.publisher.confirm(oldest)
                self._store_done()
        except (PublishError, StoreUnavailableError) as error:
            log.warning("relay.unconfirmed_at_stop", error=error.detail, batches=len(self.flight))


def topic_names(settings: Settings) -> TopicNames:
    """Return the topic names of a deployment: BRIEF §6's, behind `topic_prefix`."""
    names = TopicNames()
    return names.prefixed(settings.topic_prefix) if settings.topic_prefix else names


def build_relay(
    services: Services,
    *,
    options: RelayOptions | None = None,
    publisher: Publisher | None = None,
) -> Relay:
    """Wire a relay from the services: ledger, database, settings, and the Merkle log.

    The log (`services.log`) is the checkpoint source: the relay publishes each signed
    checkpoint it has stored, whoever took it (the log's `catch_up`).

    Requires `settings.kafka_bootstrap_servers` unless a publisher is given.
    """
    settings = services.settings
    names = topic_names(settings)
    if publisher is None:
        if not settings.kafka_bootstrap_servers:
            raise RelayConfigurationError(
                "no Kafka broker configured: set KAFKA_BOOTSTRAP_SERVERS or pass --kafka"
            )
        publisher = KafkaPublisher(settings.kafka_bootstrap_servers, names)
    positions = RelayPositions(services.database)
    positions.create_table()
    return Relay(
        ledger=services.ledger,
        positions=positions,
        publisher=publisher,
        names=names,
        checkpoints=services.log,
        lineage=services.lineage,
        options=options or RelayOptions(),
    )


class RelayConfigurationError(LedgerError):
    """Refuse to start a relay that has no broker to publish to."""

    title = "Relay not configured"
