# long module: the relay loop, its publisher and its stored position make one delivery guarantee
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

from ledger.application import ConsentLedger
from ledger.backoff import Backoff
from ledger.errors import ErrorKind, InvalidInputError, LedgerError, StoreUnavailableError
from ledger.events import ContentRegistered, Entry, EventVoided, LedgerEvent, SubjectEvent
from projections.database import Database, translate_driver_errors
from projections.permission_changes import PermissionChangeDeriver, SubjectStep
from projections.snapshots.lineage import Lineage
from projections.work_changes import work_changes
from services.kafka import DEFAULT_BATCH_SIZE, DEFAULT_POLL_INTERVAL_S
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
        try:
            producer = self._connect()
            futures = [
                producer.send(r.topic, key=r.key, value=r.value, headers=list(r.headers))
                for r in records
            ]
            producer.flush(timeout=self.delivery_timeout_s + 1)
            for future in futures:
                if not future.is_done:
                    raise PublishError(
                        f"broker did not acknowledge within {self.delivery_timeout_s}s"
                    )
                if future.failed():
                    raise PublishError(f"broker refused a record: {future.exception!r}")
        except PublishError:
            self._drop()
            raise
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
                enable_idempotence=True,
                acks="all",
                allow_auto_create_topics=False,  # ensure_topics made them, with settings
                max_in_flight_requests_per_connection=1,
                linger_ms=0,
                request_timeout_ms=timeout_ms // 2,
                delivery_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms // 2,
                bootstrap_timeout_ms=timeout_ms // 2,
                reconnect_backoff_max_ms=1000,
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

    def __post_init__(self) -> None:
        """Refuse a batch size below 1 or non-positive intervals (InvalidInputError)."""
        if self.batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {self.batch_size}")
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
        stored: dict[str, int] = {}
        if entries:
            stored[self.names.events] = entries[-1].position
        if checkpoints:
            stored[self.names.checkpoints] = max(int(c["tree_size"]) for c in checkpoints)
        self.positions.store(stored)
        if entries:
            self._position = entries[-1].position
        if checkpoints:
            self._tree_size = stored[self.names.checkpoints]
        self.stats.events += len(entries)
        self.stats.records += len(records)
        self.stats.batches += 1
        self.stats.position = self.position()
        log.info(
            "relay.batch_published",
            first_position=entries[0].position if entries else None,
            position=self._position,
            events=len(entries),
            records=len(records),
            checkpoints=len(checkpoints),
            publish_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return len(entries)

    def _pending_checkpoints(self) -> list[Mapping[str, Any]]:
        if self.checkpoints is None:
            return []
        if self._tree_size is None:
            self._tree_size = self.positions.get(self.names.checkpoints)
        found = self.checkpoints.checkpoints_after(self._tree_size)
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
        StoreUnavailableError) once attempts have failed for that long.
        """
        stop = stop or threading.Event()
        with translate_driver_errors(LEDGER_UNAVAILABLE):
            target = self.ledger.ledger_position() if until_caught_up else None
        options = self.options
        initial_s = min(options.backoff_initial_s, options.backoff_max_s)
        retrying = Backoff(initial_s, options.backoff_max_s).retrying()
        failing_since: float | None = None
        log.info("relay.started", position=self._safe_position(), topics=list(self.names.all()))
        while not stop.is_set():
            attempt_started = time.monotonic()
            try:
                published = self.publish_batch()
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
