"""Benchmark the Kafka relay: throughput, end-to-end revocation latency, broker ceiling.

    python -m bench.relay [--events 20000] [--revocations 300] [--database-url URL]

One run, one broker (a local Tansu unless KAFKA_BOOTSTRAP_SERVERS names one), measured
side by side:

- `relay`: a fresh ledger holding `--events` events (terms acceptances, grants and
  revocations over `events / 10` subjects) published by `Relay.run(until_caught_up)`,
  in process, twice on topics of their own: one batch at a time (`pipeline_depth=0`,
  the default) and pipelined (3 batches in flight): events/s, records/s
  and records/s as a ratio of the ceiling below.
- `broker produce` (the ceiling) / `broker consume`: the pipelined run's very records
  (topics, keys, values, headers) produced again with the relay's delivery settings
  (`PRODUCER_DELIVERY`: idempotent, acks=all, one request in flight, linger 0), all
  ready before the clock starts and flushed once at the end, then consumed back.
- `revocation -> handler`: `consent-ledger relay` running as its own process (default
  options: polls an idle ledger every 50 ms), a `Subscriber` thread on the permission
  changes; each revocation is appended through the use case at a random moment, and
  the latency runs from just before the append to the handler's call: p50, p99, max.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ledger.commands import AcceptTerms, Command, Grant, Revoke
from services.bootstrap import Services, bootstrap
from services.kafka.relay import (
    PRODUCER_DELIVERY,
    Acks,
    KafkaPublisher,
    RelayOptions,
    RelayPositions,
    build_relay,
    topic_names,
)
from services.kafka.topics import TopicNames, ensure_topics
from services.kafka.wire import OutgoingRecord
from services.settings import Settings
from services.subscriber import ConsentMessage, Subscriber
from tests.support.kafka_broker import LocalBroker

WRITE_CHUNK = 500
PIPELINED = 3  # batches in flight in the pipelined run


@contextmanager
def broker() -> Iterator[str]:
    """Yield bootstrap servers: $KAFKA_BOOTSTRAP_SERVERS, else a local Tansu broker."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    with LocalBroker() as local:
        yield local.bootstrap_servers


def fill(services: Services, events: int) -> None:
    """Append about `events` events through the use cases, in group commits."""
    ledger = services.ledger
    ledger.publish_terms(
        "v1",
        datetime(2024, 1, 1, tzinfo=UTC),
        [
            {"purpose": "ai-training", "default": "granted"},
            {"purpose": "personalization", "default": "granted"},
        ],
    )
    purposes = ["ai-training", "ai-generative-training", "data-mining", "personalization"]
    pending: list[Command] = []
    written = 1
    subject = 0
    while written < events:
        name = f"artist-{subject}"
        pending.append(AcceptTerms(subject=name, version="v1"))
        for n in range(9):
            purpose = purposes[n % len(purposes)]
            content = [f"{name}-track-{n % 3}"] if n % 2 else None
            if n % 3 == 2:
                pending.append(Revoke(subject=name, purpose=purpose, content_ids=content))
            else:
                pending.append(Grant(subject=name, purpose=purpose, content_ids=content))
        written += 10
        subject += 1
        if len(pending) >= WRITE_CHUNK:
            ledger.execute_many(pending)
            pending = []
    if pending:
        ledger.execute_many(pending)


def measure_relay(
    services: Services, options: RelayOptions, sent: list[OutgoingRecord] | None = None
) -> dict[str, float]:
    """Publish the whole ledger once; return events, records, seconds, mean record bytes.

    The relay starts from position 0 on topics of its own (a fresh prefix), so several
    measurements can run on one ledger. The records it hands to the producer are
    appended to `sent`, if given.
    """
    settings = replace(services.settings, topic_prefix=f"bench.{time.time_ns()}.")
    services.settings = settings
    assert settings.kafka_bootstrap_servers
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers, topic_names(settings))
    relay = build_relay(services, publisher=publisher, options=options)
    records_bytes = 0
    original = publisher.send

    def counting(records: Sequence[OutgoingRecord]) -> Acks:
        nonlocal records_bytes
        records_bytes += sum(len(r.value or b"") + len(r.key) for r in records)
        if sent is not None:
            sent.extend(records)
        return original(records)

    publisher.send = counting  # type: ignore[method-assign]
    start = time.perf_counter()
    stats = relay.run(until_caught_up=True)
    seconds = time.perf_counter() - start
    relay.close()
    return {
        "events": stats.events,
        "records": stats.records,
        "seconds": seconds,
        "record_bytes": records_bytes / max(1, stats.records),
    }


def measure_broker(bootstrap_servers: str, records: Sequence[OutgoingRecord]) -> dict[str, float]:
    """Produce the relay's very records again, then consume them back: the ceiling.

    Same topics (under a fresh prefix), keys, values and headers, the relay's delivery
    settings (`PRODUCER_DELIVERY`), every record ready before the clock starts, one
    stream with one flush at the end: what this producer can push with no ledger
    behind it, the ceiling the relay is held to.
    """
    prefix = f"bench.raw.{time.time_ns()}."
    names = TopicNames().prefixed(prefix)
    ensure_topics(bootstrap_servers, names)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **PRODUCER_DELIVERY)
    rename = {  # the relay's topic -> the same topic under this prefix
        topic: prefix + default
        for topic in {r.topic for r in records}
        for default in TopicNames().all()
        if topic.endswith("." + default)
    }
    ready = [(rename[r.topic], r.key, r.value, list(r.headers)) for r in records]
    start = time.perf_counter()
    for topic, key, value, headers in ready:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    produce_s = time.perf_counter() - start
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    partitions = [
        TopicPartition(topic, p)
        for topic in sorted(set(rename.values()))
        for p in consumer.partitions_for_topic(topic)
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    got = 0
    start = time.perf_counter()
    while got < len(ready):
        for batch in consumer.poll(timeout_ms=200, max_records=5000).values():
            got += len(batch)
    consume_s = time.perf_counter() - start
    consumer.close()
    return {"produce_s": produce_s, "consume_s": consume_s}


def measure_latency(settings: Settings, services: Services, revocations: int) -> list[float]:
    """Return seconds from each revocation's append to the subscriber's handler."""
    names = topic_names(settings)
    ledger = services.ledger
    positions = RelayPositions(services.database)
    positions.store({names.events: ledger.ledger_position()})  # start at the head
    subjects = [f"latency-{n}" for n in range(revocations)]
    for subject in subjects:
        granted = ledger.grant(subject, "ai-generative-training")
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_DATA_DIR": str(settings.resolved_data_dir()),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
        "LEDGER_LOG_LEVEL": "warning",
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = threading.Event()

    def handle(message: ConsentMessage) -> None:
        value = message.value or {}
        if value.get("type") == "ConsentRevoked" and value["subject"] in started:
            arrived.setdefault(value["subject"], time.perf_counter())
            if len(arrived) == revocations:
                done.set()

    subscriber = Subscriber(
        [names.permission_changes],
        "bench-latency",
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="latest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    thread = threading.Thread(target=subscriber.run, args=(handle,), daemon=True)
    thread.start()
    try:
        if not subscriber.wait_until_assigned(30):
            raise RuntimeError("the subscriber was given no partitions within 30 s")
        deadline = time.monotonic() + 30
        while positions.get(names.events) < granted.position:  # the grants went out first
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not publish the grants within 30 s")
            time.sleep(0.05)
        rng = random.Random(6)
        for subject in subjects:
            time.sleep(rng.uniform(0.005, 0.06))
            started[subject] = time.perf_counter()
            ledger.revoke(subject, "ai-generative-training")
        if not done.wait(60):
            raise RuntimeError(f"only {len(arrived)} of {revocations} revocations arrived")
    finally:
        subscriber.stop()
        thread.join(timeout=10)
        subscriber.close()
        relay.terminate()
        relay.wait(timeout=10)
    return [arrived[s] - started[s] for s in subjects]


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values` (0 < fraction <= 1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Run the relay benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--revocations", type=int, default=300, help="0: skip the latency run")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp, broker() as servers:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        settings = Settings(
            database_url=url,
            data_dir=Path(tmp) / "data",
            kafka_bootstrap_servers=servers,
            topic_prefix=f"bench.{time.time_ns()}.",
            log_format="json",
        )
        services = bootstrap(settings)
        try:
            start = time.perf_counter()
            fill(services, args.events)
            fill_s = time.perf_counter() - start
            sequential = measure_relay(services, RelayOptions(pipeline_depth=0))
            sent: list[OutgoingRecord] = []
            relay = measure_relay(services, RelayOptions(pipeline_depth=PIPELINED), sent)
            records = int(relay["records"])
            raw = measure_broker(servers, sent)
            del sent
            latencies: list[float] = []
            if args.revocations:
                latency_settings = replace(settings, topic_prefix=f"bench.lat.{time.time_ns()}.")
                latencies = measure_latency(latency_settings, services, args.revocations)
        finally:
            services.close()
    events = relay["events"]
    ceiling = records / raw["produce_s"]

    def relay_row(name: str, measured: dict[str, float]) -> tuple[str, str, str]:
        rate = measured["records"] / measured["seconds"]
        return (
            name,
            f"{measured['events'] / measured['seconds']:,.0f} events/s",
            f"{rate:,.0f} records/s = {rate / ceiling:.2f} x ceiling "
            f"({measured['records'] / measured['events']:.1f} records/event)",
        )

    rows = [
        (
            "ledger fill (use cases, group commit)",
            f"{events / fill_s:,.0f} events/s",
            f"{fill_s:.2f} s",
        ),
        relay_row("relay, one batch at a time (depth 0)", sequential),
        relay_row(f"relay, pipelined (depth {PIPELINED})", relay),
        (
            "broker produce (relay's settings): ceiling",
            f"{ceiling:,.0f} records/s",
            f"the relay's {records:,.0f} records again ({relay['record_bytes']:.0f} B mean)",
        ),
        ("broker consume", f"{records / raw['consume_s']:,.0f} records/s", ""),
    ]
    if latencies:
        rows += [
            (
                "revocation -> handler (p50)",
                f"{statistics.median(latencies) * 1000:.1f} ms",
                f"{len(latencies)} revocations",
            ),
            ("revocation -> handler (p99)", f"{percentile(latencies, 0.99) * 1000:.1f} ms", ""),
            ("revocation -> handler (max)", f"{max(latencies) * 1000:.1f} ms", ""),
        ]
    print(f"relay benchmark: {events:,.0f} events, {url.split(':', 1)[0]}, broker {servers}")
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | rate | detail |")
    print(f"| {'-' * width} | --- | --- |")
    for name, rate, detail in rows:
        print(f"| {name.ljust(width)} | {rate} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
