# long module: the at-least-once scenarios share one broker harness
"""The relay publishes the committed ledger to Kafka at least once, in order, losing nothing.

Runs against the session's Kafka-protocol broker (`kafka_bootstrap`), each test on topics
of its own; the outage test starts and stops a broker of its own.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import structlog

from ledger.application import Receipt
from ledger.vocabulary import ALL_ASPECTS
from projections.permission_changes import parse_scope
from services.bootstrap import Services, bootstrap
from services.kafka.relay import (
    KafkaPublisher,
    PublishError,
    RelayConfigurationError,
    RelayPositions,
    build_relay,
    topic_names,
)
from services.kafka.wire import (
    SCHEMA_EVENT,
    SCHEMA_PERMISSION,
    SCHEMA_PERMISSION_CHANGE,
    split_permission_key,
)
from services.settings import Settings
from services.subscriber import ConsentMessage, Subscriber, bootstrap_state
from tests.integration.relay_support import (
    GROUP_OPTIONS,
    fast_relay,
    logs_to_this_tests_stderr,  # noqa: F401 (autouse fixture)
    positions_at_least,
    read_topic,
    relay_running,
    run_cli,
    running_subscriber,
    start_relay_process,
    with_kafka,
)
from tests.support.kafka_broker import LocalBroker

pytestmark = pytest.mark.kafka


class MovableClock:
    """A ledger clock the test moves forward (to let grants expire without waiting)."""

    def __init__(self) -> None:
        self.instant = datetime.now(UTC)

    def now(self) -> datetime:
        self.instant += timedelta(microseconds=1)
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


@pytest.fixture
def kafka_settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    """Settings of a fresh ledger (SQLite, then PostgreSQL) with topics of its own."""
    return with_kafka(settings, kafka_bootstrap, "relay")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def wired(kafka_settings: Settings, clock: MovableClock) -> Iterator[Services]:
    services = bootstrap(kafka_settings, clock=clock)
    yield services
    services.close()


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """Settings of a fresh SQLite ledger with topics of its own."""
    base = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", log_format="json")
    return with_kafka(base, kafka_bootstrap, "relay")


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    services = bootstrap(sqlite_settings)
    yield services
    services.close()


def write_scenario(services: Services, clock: MovableClock) -> dict[str, Receipt]:
    """Record one of each kind of event; return the receipts by name."""
    ledger = services.ledger
    start = clock.instant - timedelta(days=1)
    receipts = {
        "terms": ledger.publish_terms(
            "v1",
            start,
            [
                {"purpose": "ai-training", "default": "granted"},
                {"purpose": "personalization", "default": "granted"},
            ],
        ),
        "accept": ledger.accept_terms("a1", "v1"),
        "grant": ledger.grant(
            "a1",
            "ai-generative-training",
            party="acme",
            aspect="voice",
            expires_at=clock.instant + timedelta(hours=1),
        ),
        "revoke": ledger.revoke("a1", "ai-training", content_ids=["t1"]),
    }
    receipts["void"] = ledger.void(receipts["revoke"].event_id, "entered in error")
    clock.advance(timedelta(hours=2))
    expiry = ledger.record_expiry("a1", receipts["grant"].event_id)
    assert expiry is not None
    receipts["expire"] = expiry
    receipts["noop"] = ledger.revoke("a2", "personalization")
    receipts["open-grant"] = ledger.grant("a2", "data-mining", party="*")
    receipts["erase"] = ledger.erase("a2")
    return receipts


def test_relay_publishes_every_event_once_keyed_by_subject_with_position_headers(
    wired: Services, clock: MovableClock
) -> None:
    receipts = write_scenario(wired, clock)
    relay = fast_relay(wired)
    try:
        stats = relay.run(until_caught_up=True)
    finally:
        relay.close()
    names = topic_names(wired.settings)
    positions = {r.position for r in receipts.values()}

    events = read_topic(
        wired.settings.kafka_bootstrap_servers or "",
        names.events,
        until=positions_at_least(positions),
    )

    assert stats.events == len(receipts)
    assert Counter(m.position for m in events) == dict.fromkeys(positions, 1)
    by_name = {
        name: next(m for m in events if m.position == r.position) for name, r in receipts.items()
    }
    assert by_name["terms"].key == "terms:v1"
    assert by_name["terms"].value is not None
    assert by_name["terms"].value["subject"] is None
    revoke = by_name["revoke"]
    assert revoke.key == "a1"
    assert revoke.headers["event_id"] == str(receipts["revoke"].event_id)
    assert revoke.headers["position"] == str(receipts["revoke"].position)
    assert (revoke.type, revoke.schema) == ("ConsentRevoked", SCHEMA_EVENT)
    assert revoke.value is not None
    assert revoke.value == {
        "event_id": str(receipts["revoke"].event_id),
        "position": receipts["revoke"].position,
        "type": "ConsentRevoked",
        "subject": "a1",
        "purpose": "ai-training",
        "party": "platform",
        "scope": "content:t1",
        "content_ids": ["t1"],
        "aspect": ALL_ASPECTS,
        "effective_at": revoke.value["recorded_at"],
        "recorded_at": revoke.value["recorded_at"],
    }
    void = by_name["void"].value
    assert void is not None
    assert (void["voided_event_id"], void["scope"]) == (
        str(receipts["revoke"].event_id),
        "content:t1",
    )
    assert b"evidence" not in orjson.dumps([m.value for m in events])
    partitions_by_subject: dict[str | None, set[int]] = {}
    for m in events:
        partitions_by_subject.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in partitions_by_subject.values())
    assert RelayPositions(wired.database).get(names.events) == max(positions)


def test_permission_topics_follow_the_ledgers_answers_flip_by_flip(
    wired: Services, clock: MovableClock
) -> None:
    receipts = write_scenario(wired, clock)
    relay = fast_relay(wired)
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.close()
    names = topic_names(wired.settings)
    bootstrap_servers = wired.settings.kafka_bootstrap_servers or ""
    last = receipts["erase"].position

    changes = read_topic(
        bootstrap_servers, names.permission_changes, until=positions_at_least({last})
    )
    table = bootstrap_state(bootstrap_servers, topic=names.permissions, timeout_s=10)

    by_position = {r.position: name for name, r in receipts.items()}
    assert [
        (by_position[m.position or 0], m.value["purpose"], m.value["party"], m.value["scope"],
         m.value["allowed"], m.value["basis"])
        for m in sorted(changes, key=lambda m: (m.position or 0, m.seq))
        if m.value is not None
    ] == [
        ("accept", "ai-training", "platform", "catalogue", True, "terms-default"),
        ("accept", "personalization", "platform", "catalogue", True, "terms-default"),
        ("grant", "ai-generative-training", "acme", "catalogue/voice", True, "explicit-grant"),
        ("revoke", "ai-training", "platform", "content:t1", False, "explicit-revocation"),
        ("void", "ai-training", "platform", "content:t1", True, "terms-default"),
        ("expire", "ai-generative-training", "acme", "catalogue/voice", False, "grant-expired"),
        ("open-grant", "data-mining", "*", "catalogue", True, "explicit-grant"),
        ("erase", "data-mining", "*", "catalogue", False, "erased"),
    ]  # fmt: skip
    assert all(
        m.schema == SCHEMA_PERMISSION_CHANGE and m.key == m.value["subject"]
        for m in changes
        if m.value
    )
    assert table.position == last
    assert {split_permission_key(k)[0] for k in table.states} == {"a1"}
    for key, state in table.states.items():
        subject, purpose, party, scope = split_permission_key(key)
        content, aspect = parse_scope(scope)
        answer = wired.ledger.check(subject, purpose, party=party, content=content, aspect=aspect)
        assert (state["allowed"], state["basis"]) == (answer.allowed, answer.basis.value), key
    tombstones = read_topic(
        bootstrap_servers, names.permissions, until=lambda ms: any(m.value is None for m in ms)
    )
    assert {m.key for m in tombstones if m.value is None} == {
        "a2|personalization|platform|catalogue",
        "a2|data-mining|*|catalogue",
    }
    assert all(m.schema == SCHEMA_PERMISSION for m in tombstones)


def test_relay_resumes_after_its_stored_position_and_republishes_nothing(
    sqlite_services: Services,
) -> None:
    ledger = sqlite_services.ledger
    first = [ledger.revoke(f"s{n}", "ai-training") for n in range(5)]
    relay = fast_relay(sqlite_services)
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.close()
    second = [ledger.grant(f"s{n}", "ai-training") for n in range(5)]
    restarted = fast_relay(sqlite_services, batch_size=2)
    try:
        stats = restarted.run(until_caught_up=True)
    finally:
        restarted.close()
    names = topic_names(sqlite_services.settings)
    wanted = {r.position for r in first + second}

    events = read_topic(
        sqlite_services.settings.kafka_bootstrap_servers or "",
        names.events,
        until=positions_at_least(wanted),
    )

    assert (stats.events, stats.batches) == (5, 3)
    assert Counter(m.position for m in events) == dict.fromkeys(wanted, 1)


def test_pipelined_batches_reach_each_key_in_ledger_order_on_every_topic(
    sqlite_services: Services,
) -> None:
    ledger = sqlite_services.ledger
    written = []
    for n in range(120):  # every write flips its subject's permission: records on 3 topics
        subject = f"s{n % 7}"
        if (n // 7) % 2:
            written.append(ledger.revoke(subject, "ai-generative-training"))
        else:
            written.append(ledger.grant(subject, "ai-generative-training"))
    relay = fast_relay(sqlite_services, batch_size=4, pipeline_depth=3)  # 30 batches
    try:
        stats = relay.run(until_caught_up=True)
    finally:
        relay.close()
    names = topic_names(sqlite_services.settings)
    servers = sqlite_services.settings.kafka_bootstrap_servers or ""
    wanted = {r.position for r in written}

    topics = {
        topic: read_topic(servers, topic, until=positions_at_least(wanted))
        for topic in (names.events, names.permission_changes, names.permissions)
    }

    assert (stats.events, stats.batches, stats.failures) == (120, 30, 0)
    for topic, messages in topics.items():
        assert {m.position for m in messages} == wanted, topic
        by_key: dict[str | None, list[tuple[int, int]]] = {}
        for m in messages:  # (partition, offset) order: the order a consumer reads
            by_key.setdefault(m.key, []).append((m.position or 0, m.seq))
        for key, identities in by_key.items():
            assert identities == sorted(set(identities)), (topic, key)


def test_batch_the_broker_did_not_acknowledge_is_not_stored_and_goes_out_later(
    sqlite_services: Services, tmp_path: Path
) -> None:
    receipt = sqlite_services.ledger.revoke("s1", "ai-training")
    names = topic_names(sqlite_services.settings)
    nowhere = KafkaPublisher("127.0.0.1:9", names, delivery_timeout_s=2)  # discard port
    unreachable = build_relay(sqlite_services, publisher=nowhere)

    with pytest.raises(PublishError, match=r"127\.0\.0\.1:9"):
        unreachable.publish_batch()
    with pytest.raises(PublishError):
        unreachable.run(give_up_after_s=0.2)

    assert RelayPositions(sqlite_services.database).get(names.events) == 0
    relay = fast_relay(sqlite_services)
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.close()
    events = read_topic(
        sqlite_services.settings.kafka_bootstrap_servers or "",
        names.events,
        until=positions_at_least({receipt.position}),
    )
    assert [m.position for m in events] == [receipt.position]


def test_relay_without_a_broker_configured_is_refused(sqlite_services: Services) -> None:
    sqlite_services.settings = replace(sqlite_services.settings, kafka_bootstrap_servers=None)
    with pytest.raises(RelayConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS"):
        build_relay(sqlite_services)


def test_broker_outage_neither_blocks_writes_nor_loses_events_once_it_is_back(
    sqlite_url: str, tmp_path: Path
) -> None:
    broker = LocalBroker(stop_timeout_s=0.5).start()
    port = broker.port
    base = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", log_format="json")
    settings = with_kafka(base, broker.bootstrap_servers, "outage")
    services = bootstrap(settings)
    names = topic_names(settings)
    positions = RelayPositions(services.database)
    restarted: LocalBroker | None = None
    try:
        relay = fast_relay(services)
        with structlog.testing.capture_logs() as logs, relay_running(relay):
            before = [services.ledger.revoke(f"s{n % 3}", "ai-training") for n in range(10)]
            _wait_for(lambda: positions.get(names.events) == before[-1].position)
            seen_before = read_topic(
                broker.bootstrap_servers,
                names.events,
                until=positions_at_least({r.position for r in before}),
            )

            broker.stop()  # memory storage: what it held is gone with it
            during, write_seconds = [], []
            for n in range(10):
                started = time.perf_counter()
                during.append(services.ledger.grant(f"s{n % 3}", "ai-training"))
                write_seconds.append(time.perf_counter() - started)
                time.sleep(0.05)
            stalled_at = positions.get(names.events)

            restarted = LocalBroker(port=port, stop_timeout_s=0.5).start()
            after = [services.ledger.revoke(f"s{n % 3}", "ai-training") for n in range(5)]
            _wait_for(lambda: positions.get(names.events) == after[-1].position, timeout_s=30)

        seen_after = read_topic(
            restarted.bootstrap_servers,
            names.events,
            until=positions_at_least({r.position for r in during + after}),
        )
    finally:
        services.close()
        broker.stop()
        if restarted is not None:
            restarted.stop()

    assert {m.position for m in seen_before} == {r.position for r in before}
    assert max(write_seconds) < 0.5, write_seconds
    assert stalled_at == before[-1].position
    assert Counter(m.position for m in seen_after) == dict.fromkeys(
        {r.position for r in during + after}, 1
    )
    failures = [e for e in logs if e["event"] == "relay.publish_failed"]
    assert failures
    assert failures[0]["position"] == before[-1].position
    assert any(e["event"] == "relay.recovered" for e in logs)


def _wait_for(condition: object, timeout_s: float = 15.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_cli_relay_once_publishes_everything_and_sigterm_stops_it_cleanly(
    sqlite_settings: Settings, sqlite_services: Services, tmp_path: Path
) -> None:
    receipts = [sqlite_services.ledger.revoke(f"s{n}", "ai-training") for n in range(3)]

    once = run_cli(sqlite_settings, "relay", "--once", "--json")

    assert once.returncode == 0, once.stderr
    assert orjson.loads(once.stdout)["events"] == 3
    more = sqlite_services.ledger.grant("s0", "ai-training")
    process = start_relay_process(sqlite_settings, log=tmp_path / "relay.log")
    try:
        positions = RelayPositions(sqlite_services.database)
        names = topic_names(sqlite_settings)
        _wait_for(lambda: positions.get(names.events) == more.position)
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "relay.log").read_text()
    assert returncode == 0, log
    assert '"relay.stopped"' in log
    events = read_topic(
        sqlite_settings.kafka_bootstrap_servers or "",
        names.events,
        until=positions_at_least({r.position for r in [*receipts, more]}),
    )
    assert sorted(m.position or 0 for m in events) == sorted(r.position for r in [*receipts, more])


def test_cli_relay_without_a_broker_exits_unavailable_after_giving_up(
    sqlite_settings: Settings,
) -> None:
    unreachable = replace(sqlite_settings, kafka_bootstrap_servers="127.0.0.1:9")
    run_cli(unreachable, "grant", "s1", "ai-training")

    result = run_cli(unreachable, "relay", "--once", "--give-up-after", "0.5")

    assert result.returncode == 5
    assert (
        result.stderr.strip().splitlines()[-1].startswith("consent-ledger: error: cannot publish")
    )


def test_relay_killed_at_random_points_loses_nothing_and_a_subscriber_sees_each_once(
    sqlite_settings: Settings, sqlite_services: Services, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ledger = sqlite_services.ledger
    names = topic_names(sqlite_settings)
    written: list[Receipt] = []
    stop_writing = threading.Event()

    def write() -> None:
        granted: set[str] = set()
        n = 0
        while not stop_writing.is_set():
            subject = f"s{n % 11}"
            if subject in granted:  # every write flips the subject's permission
                written.append(ledger.revoke(subject, "ai-generative-training"))
                granted.discard(subject)
            else:
                written.append(ledger.grant(subject, "ai-generative-training"))
                granted.add(subject)
            n += 1
            time.sleep(0.004)

    writer = threading.Thread(target=write, name="writer")
    writer.start()
    log = tmp_path / "relay.log"
    log.touch()
    try:
        for _ in range(5):
            batches = log.read_text().count('"relay.batch_published"')
            relay = start_relay_process(
                sqlite_settings, "--batch-size", "5", "--poll-interval", "0.01", log=log
            )
            _wait_for(lambda b=batches: log.read_text().count('"relay.batch_published"') > b)
            time.sleep(rng.uniform(0.0, 0.3))  # into the stream of batches, anywhere
            relay.kill()  # SIGKILL: no chance to finish the batch or store anything
            relay.wait()
    finally:
        stop_writing.set()
        writer.join()
    # A crash between the broker's acknowledgement and the stored position, injected
    # for sure: the next relay publishes the last 25 events a second time.
    positions = RelayPositions(sqlite_services.database)
    positions.store({names.events: max(0, positions.get(names.events) - 25)})
    final = run_cli(sqlite_settings, "relay", "--once", "--batch-size", "50")
    assert final.returncode == 0, final.stderr
    wanted = {r.position for r in written}
    bootstrap_servers = sqlite_settings.kafka_bootstrap_servers or ""

    def all_and_repeats(messages: list[ConsentMessage]) -> bool:
        return len(messages) >= len(wanted) + 25 and positions_at_least(wanted)(messages)

    events = read_topic(bootstrap_servers, names.events, until=all_and_repeats)
    handled: Counter[tuple[str, int | None, int]] = Counter()
    subscriber = Subscriber(
        [names.events, names.permission_changes],
        "kill-test",
        bootstrap_servers=bootstrap_servers,
        **GROUP_OPTIONS,
    )

    def record(message: ConsentMessage) -> None:
        handled[(message.topic, message.position, message.seq)] += 1

    # Every event here flips its subject's permission: one change per event.
    changes = read_topic(bootstrap_servers, names.permission_changes, until=all_and_repeats)
    with running_subscriber(subscriber, record):
        stats = subscriber.stats
        _wait_for(lambda: stats.handled + stats.duplicates >= len(events) + len(changes))

    counts = Counter(m.position for m in events)
    assert wanted <= set(counts), f"seed {seed}: lost {sorted(wanted - set(counts))}"
    assert max(counts.values()) >= 2, f"seed {seed}: the injected crash repeated nothing"
    assert set(handled.values()) == {1}, f"seed {seed}: handled twice"
    assert {p for t, p, _ in handled if t == names.events} == set(counts)
    assert {(p, s) for t, p, s in handled if t == names.permission_changes} == {
        (m.position, m.seq) for m in changes
    }
    assert subscriber.stats.duplicates == len(events) + len(changes) - len(handled)


def test_signed_checkpoints_are_published_once_each_keyed_by_log_id(
    sqlite_services: Services,
) -> None:
    log = sqlite_services.log
    sqlite_services.ledger.revoke("s1", "ai-training")
    log.catch_up()
    log.take_checkpoint(force=True)
    relay = fast_relay(sqlite_services)
    try:
        relay.run(until_caught_up=True)
        sqlite_services.ledger.grant("s1", "ai-training")
        log.catch_up()
        log.take_checkpoint(force=True)
        relay.run(until_caught_up=True)
    finally:
        relay.close()
    names = topic_names(sqlite_services.settings)
    stored = [c.to_published_json() for c in log.iter_checkpoints()]

    published = read_topic(
        sqlite_services.settings.kafka_bootstrap_servers or "",
        names.checkpoints,
        until=lambda ms: len(ms) >= len(stored),
    )

    assert [m.value for m in published] == stored
    assert {m.key for m in published} == {sqlite_services.settings.log_id}
    assert [m.position for m in published] == [c["tree_size"] for c in stored]
    assert RelayPositions(sqlite_services.database).get(names.checkpoints) == 2
