"""Helpers shared by the relay and subscriber tests: read topics, run the relay and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from kafka import KafkaConsumer, TopicPartition

from services.bootstrap import Services
from services.kafka.relay import KafkaPublisher, Relay, RelayOptions, build_relay, topic_names
from services.kafka.topics import TopicNames
from services.logs import configure_logging
from services.settings import Settings
from services.subscriber import ConsentMessage, Subscriber

# Tansu holds a group join for about half the session timeout; 2 s keeps joins at ~1 s.
GROUP_OPTIONS: Mapping[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
READ_TIMEOUT_S = 15.0


def unique_prefix(label: str) -> str:
    """Return a topic prefix no other test uses on the shared broker."""
    return f"test.{label}.{uuid.uuid4().hex[:8]}."


def with_kafka(settings: Settings, bootstrap_servers: str, label: str) -> Settings:
    """Return `settings` pointed at the broker, with topics of its own."""
    return replace(
        settings, kafka_bootstrap_servers=bootstrap_servers, topic_prefix=unique_prefix(label)
    )


def fast_relay(services: Services, **options: float) -> Relay:
    """Return a relay that polls and backs off quickly and notices an outage in 3 s."""
    settings = services.settings
    assert settings.kafka_bootstrap_servers is not None
    publisher = KafkaPublisher(
        settings.kafka_bootstrap_servers, topic_names(settings), delivery_timeout_s=3.0
    )
    relay_options = RelayOptions(
        poll_interval_s=options.get("poll_interval_s", 0.02),
        backoff_initial_s=0.05,
        backoff_max_s=options.get("backoff_max_s", 0.5),
        batch_size=int(options.get("batch_size", 500)),
        pipeline_depth=int(options.get("pipeline_depth", 0)),
    )
    return build_relay(services, options=relay_options, publisher=publisher)


@contextmanager
def relay_running(relay: Relay) -> Iterator[Relay]:
    """Run `relay` in a thread until the block ends; re-raise what stopped it early."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            relay.run(stop)
        except BaseException as error:  # reported to the test below
            failure.append(error)

    thread = threading.Thread(target=run, name="relay", daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(timeout=15)
        relay.close()
    assert not failure, failure
    assert not thread.is_alive(), "relay thread did not stop"


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    until: Callable[[list[ConsentMessage]], bool],
    timeout_s: float = READ_TIMEOUT_S,
) -> list[ConsentMessage]:
    """Read `topic` from the beginning until `until(messages)` holds or time runs out.

    Returns the messages in (partition, offset) order; the caller asserts on them.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    messages: list[ConsentMessage] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: list[TopicPartition] = []
        while not partitions and time.monotonic() < deadline:
            found = consumer.partitions_for_topic(topic)
            partitions = [TopicPartition(topic, p) for p in sorted(found)]
            if not partitions:
                time.sleep(0.05)
        if not partitions:
            return messages
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)

        def at_end() -> bool:
            marks = [consumer.highwater(tp) for tp in partitions]
            return all(
                m is not None and consumer.position(tp) >= m
                for tp, m in zip(partitions, marks, strict=True)
            )

        # Until the predicate holds, then on to the end, so repeats show up too.
        while not (until(messages) and at_end()) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                messages.extend(ConsentMessage.from_record(r) for r in records)
    finally:
        consumer.close(autocommit=False)
    return sorted(messages, key=lambda m: (m.partition, m.offset))


def positions_at_least(wanted: set[int]) -> Callable[[list[ConsentMessage]], bool]:
    """Return a predicate: every wanted position has been read."""

    def done(messages: list[ConsentMessage]) -> bool:
        return wanted <= {m.position for m in messages}

    return done


def cli_env(settings: Settings) -> dict[str, str]:
    """Return the environment that points `consent-ledger` at these settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEDGER_", "KAFKA_")) and k != "PYTHONPATH"
    }
    env.update(
        LEDGER_DATABASE_URL=settings.database_url,
        LEDGER_DATA_DIR=str(settings.resolved_data_dir()),
        LEDGER_TOPIC_PREFIX=settings.topic_prefix,
        LEDGER_LOG_FORMAT="json",
    )
    if settings.kafka_bootstrap_servers:
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    return env


def cli_command() -> list[str]:
    """Return the argv prefix that runs `consent-ledger` with this interpreter."""
    return [sys.executable, "-m", "services.cli.main"]


def run_cli(
    settings: Settings, *args: str, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run one `consent-ledger` command as a subprocess; return its result."""
    return subprocess.run(
        [*cli_command(), *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def start_relay_process(settings: Settings, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `consent-ledger relay` as a subprocess, its log going to `log`."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*cli_command(), "relay", *args],
            env=cli_env(settings),
            stdout=sink,
            stderr=sink,
            cwd=Path(__file__).resolve().parents[2],
        )


def names_for(settings: Settings) -> TopicNames:
    """Return the topic names these settings publish to."""
    return topic_names(settings)


@contextmanager
def running_subscriber(
    subscriber: Subscriber, handler: Callable[[ConsentMessage], object]
) -> Iterator[Subscriber]:
    """Run `subscriber.run(handler)` in a thread for the block; close it afterwards."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            subscriber.run(handler)
        except BaseException as error:  # reported to the test below
            failure.append(error)

    thread = threading.Thread(target=run, name="subscriber", daemon=True)
    thread.start()
    try:
        yield subscriber
    finally:
        subscriber.stop()
        thread.join(timeout=15)
        subscriber.close()
    assert not failure, failure
    assert not thread.is_alive(), "subscriber thread did not stop"


@pytest.fixture(autouse=True)
def logs_to_this_tests_stderr() -> Iterator[None]:
    """Point structlog at this test's stderr, then restore what was configured before.

    `configure_logging` binds the sys.stderr of the moment; an earlier in-process CLI
    test may have left it bound to a capture that is closed by now.
    """
    previous = structlog.get_config()
    configure_logging("json", "info")
    yield
    structlog.configure(**previous)
