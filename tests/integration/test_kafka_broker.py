"""The Kafka-protocol broker behaves as the ledger's publishers and subscribers rely on.

Runs against `kafka_bootstrap` (tests/kafka_fixtures.py): a local Tansu broker unless
`$KAFKA_BOOTSTRAP_SERVERS` or Docker says otherwise. Every test uses its own topics and
group ids, so they share one broker.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import OffsetAndMetadata

from services.kafka.topics import TopicNames, ensure_topics
from tests.support.kafka_broker import (
    BrokerError,
    BrokerStartError,
    LocalBroker,
    find_tansu_binary,
    probe_metadata,
)

pytestmark = pytest.mark.kafka

# Tansu holds a group join for about half the session timeout; 2 s keeps joins at ~1 s.
SESSION_TIMEOUT_MS = 2000
HEARTBEAT_INTERVAL_MS = 500
CONSUME_TIMEOUT_S = 10.0


def _unique(label: str) -> str:
    return f"test.{label}.{uuid.uuid4().hex[:10]}"


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def _consume(consumer: KafkaConsumer, count: int) -> list[Any]:
    """Poll until `count` records arrived; fail with what did arrive after the timeout."""
    records: list[Any] = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    assert len(records) >= count, f"got {len(records)} records, want {count}: {records}"
    return records


def _read_from_start(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return _consume(consumer, count)
    finally:
        consumer.close()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    """Yield an idempotent, acks=all producer like the relay's; close it afterwards."""
    client = KafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    yield client
    client.close()


def test_keyed_message_with_headers_is_consumed_back_unchanged_in_per_key_order(
    kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    topic = _unique("events")
    _create_topic(kafka_bootstrap, topic, partitions=3)
    subjects = [f"subject-{n}" for n in range(4)]
    sent = []
    for position in range(20):  # subjects interleaved, as the relay publishes them
        subject = subjects[position % len(subjects)]
        event_id = str(uuid.uuid4())
        key = subject.encode()
        value = orjson.dumps({"event_id": event_id, "position": position, "subject": subject})
        headers = [("position", str(position).encode()), ("event_id", event_id.encode())]
        producer.send(topic, key=key, value=value, headers=headers)
        sent.append((key, value, headers))
    producer.flush(timeout=10)

    records = _read_from_start(kafka_bootstrap, topic, len(sent))

    assert sorted((r.key, r.value, list(r.headers)) for r in records) == sorted(sent)
    received_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        received_by_key[record.key].append(record.value)
        partitions_by_key[record.key].add(record.partition)
    sent_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value, _ in sent:
        sent_by_key[key].append(value)
    assert received_by_key == sent_by_key
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())


def test_ensure_topics_creates_time_retained_and_compacted_topics_once(
    kafka_bootstrap: str,
) -> None:
    names = TopicNames().prefixed(_unique("ensure") + ".")

    first = ensure_topics(kafka_bootstrap, names, partitions=2, retention_ms=3_600_000)
    second = ensure_topics(kafka_bootstrap, names, partitions=2, retention_ms=3_600_000)

    assert first == names.all()
    assert second == ()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_topics(list(names.all()))
        # Named config keys make Tansu drop the connection, so ask for all of them.
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names.all()],
            config_filter="all",
        )["topic"]
    finally:
        admin.close()
    assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(names.all(), 2)
    policy = {name: configs[name]["cleanup.policy"]["value"] for name in names.all()}
    assert policy == {
        names.events: "delete",
        names.permission_changes: "delete",
        names.permissions: "compact",
        names.checkpoints: "compact",
        names.dataset_impacts: "delete",
    }
    assert configs[names.events]["retention.ms"]["value"] == "3600000"


def test_tombstone_on_compacted_topic_is_consumed_as_a_null_value(
    kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    names = TopicNames().prefixed(_unique("tombstone") + ".")
    ensure_topics(kafka_bootstrap, names, partitions=1)
    key = b"subject-1|analytics|platform|all"
    producer.send(names.permissions, key=key, value=orjson.dumps({"allowed": True}))
    producer.send(names.permissions, key=key, value=None)
    producer.flush(timeout=10)

    records = _read_from_start(kafka_bootstrap, names.permissions, 2)

    assert [(r.key, r.value) for r in records][-1] == (key, None)


def test_consumer_group_with_manual_commit_resumes_after_last_committed_offset(
    kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    topic, group = _unique("resume"), _unique("group")
    _create_topic(kafka_bootstrap, topic, partitions=1)
    for n in range(6):
        producer.send(topic, key=b"subject-1", value=f"event-{n}".encode())
    producer.flush(timeout=10)
    partition = TopicPartition(topic, 0)

    def group_consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )

    first = group_consumer()
    try:
        processed = _consume(first, 3)[:3]  # a poll may bring more; handle only three
        first.commit({partition: OffsetAndMetadata(processed[-1].offset + 1, "", -1)})
    finally:
        first.close()
    second = group_consumer()
    try:
        committed = second.committed(partition)
        resumed = _consume(second, 3)
    finally:
        second.close()

    assert [r.value for r in processed] == [b"event-0", b"event-1", b"event-2"]
    assert committed == 3
    assert [(r.offset, r.value) for r in resumed] == [
        (3, b"event-3"),
        (4, b"event-4"),
        (5, b"event-5"),
    ]


@pytest.fixture
def tansu_available() -> None:
    """Skip unless a Tansu binary is installed (the tests below start their own broker)."""
    try:
        find_tansu_binary()
    except BrokerError as exc:
        pytest.skip(str(exc))


@pytest.mark.usefixtures("tansu_available")
def test_local_broker_answers_metadata_with_its_address_until_stopped() -> None:
    broker = LocalBroker()
    with broker:
        info = probe_metadata(broker.bootstrap_servers)
        port = broker.port
    assert info.cluster_id == broker.cluster_id
    assert info.brokers == (("127.0.0.1", port),)
    assert not broker.is_running()
    with pytest.raises(OSError):
        probe_metadata(f"127.0.0.1:{port}", timeout_s=0.5)


@pytest.mark.usefixtures("tansu_available")
def test_local_broker_refuses_a_port_that_is_already_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(BrokerStartError, match="already in use") as raised:
            LocalBroker(port=port).start()

    assert raised.value.port == port
