"""The subscriber library hands each record to a service once, and revocations arrive fast.

Runs against the session's Kafka-protocol broker, each test on topics and a consumer
group of its own.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import Receipt
from services.bootstrap import Services, bootstrap
from services.kafka.relay import RelayPositions, topic_names
from services.kafka.wire import SCHEMA_PERMISSION, SCHEMA_PERMISSION_CHANGE
from services.settings import Settings
from services.subscriber import (
    ConsentMessage,
    PermissionTable,
    RecentIdentities,
    Subscriber,
    subscribe,
)
from tests.integration.relay_support import (
    GROUP_OPTIONS,
    fast_relay,
    logs_to_this_tests_stderr,  # noqa: F401 (autouse fixture)
    relay_running,
    run_cli,
    running_subscriber,
    start_relay_process,
    with_kafka,
)

pytestmark = pytest.mark.kafka

JOIN_TIMEOUT_S = 10.0


@pytest.fixture
def kafka_settings(sqlite_url: str, tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """Settings of a fresh SQLite ledger with topics of its own."""
    base = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", log_format="json")
    return with_kafka(base, kafka_bootstrap, "subscriber")


@pytest.fixture
def wired(kafka_settings: Settings) -> Iterator[Services]:
    services = bootstrap(kafka_settings)
    yield services
    services.close()


def _subscriber(settings: Settings, topics: list[str], group: str, **options: object) -> Subscriber:
    return Subscriber(
        topics,
        group,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **{**GROUP_OPTIONS, **options},
    )


def _wait_for(condition: object, timeout_s: float = 15.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_revocation_written_through_the_cli_reaches_a_subscriber_within_a_second(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    names = topic_names(kafka_settings)
    granted = run_cli(kafka_settings, "grant", "artist-7", "ai-training", "--content", "track-1")
    assert granted.returncode == 0, granted.stderr
    arrivals: dict[str, float] = {}

    def note(message: ConsentMessage) -> None:
        value = message.value or {}
        if value.get("subject") == "artist-7" and value.get("type") == "ConsentRevoked":
            arrivals.setdefault(message.topic, time.time())

    relay = start_relay_process(kafka_settings, log=tmp_path / "relay.log")
    subscriber = _subscriber(
        kafka_settings, [names.events, names.permission_changes], "recommendations"
    )
    try:
        with running_subscriber(subscriber, note):
            assert subscriber.wait_until_assigned(JOIN_TIMEOUT_S)
            revoked = run_cli(
                kafka_settings,
                "revoke",
                "artist-7",
                "ai-training",
                "--content",
                "track-1",
                "--json",
            )
            written_at = time.time()
            assert revoked.returncode == 0, revoked.stderr
            _wait_for(lambda: len(arrivals) == 2, timeout_s=5)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    recorded_at = datetime.fromisoformat(orjson.loads(revoked.stdout)["recorded_at"]).timestamp()

    for topic, arrived in arrivals.items():
        assert arrived - recorded_at < 1.0, (topic, arrived - recorded_at)
        assert arrived - written_at < 1.0, (topic, arrived - written_at)


def _revoke_many(services: Services, label: str, count: int) -> list[Receipt]:
    ledger = services.ledger
    receipts = []
    for n in range(count):
        subject = f"{label}-{n}"
        ledger.grant(subject, "personalization")
        receipts.append(ledger.revoke(subject, "personalization"))
    return receipts


def test_handler_sees_each_revocation_once_across_a_rebalance_a_replay_and_a_restart(
    wired: Services,
) -> None:
    settings = wired.settings
    names = topic_names(settings)
    seen: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()

    def handle(message: ConsentMessage) -> None:
        value = message.value or {}
        if value.get("allowed") is False:
            with lock:
                seen[(value["subject"], message.position or 0)] += 1

    def all_seen(receipts: list[Receipt]) -> bool:
        with lock:
            return {r.position for r in receipts} <= {p for _, p in seen}

    revocations: list[Receipt] = []
    with relay_running(fast_relay(wired)):
        first = _subscriber(settings, [names.permission_changes], "recs")
        second = _subscriber(settings, [names.permission_changes], "recs")
        with running_subscriber(first, handle):
            assert first.wait_until_assigned(JOIN_TIMEOUT_S)
            revocations += _revoke_many(wired, "before-rebalance", 6)
            _wait_for(lambda: all_seen(revocations))
            with running_subscriber(second, handle):
                assert second.wait_until_assigned(JOIN_TIMEOUT_S)  # the group rebalanced
                # These subjects' keys hash to all three partitions, so both handle some.
                revocations += _revoke_many(wired, "shared", 8)
                _wait_for(lambda: all_seen(revocations))
            revocations += _revoke_many(wired, "after-leave", 6)  # first takes all back
            _wait_for(lambda: all_seen(revocations))
        # Nobody listens; the relay re-publishes its last 40 events as after a crash
        # between the broker's acknowledgement and the stored position.
        positions = RelayPositions(wired.database)
        rewound_to = positions.get(names.events) - 40
        positions.store({names.events: rewound_to})
        relay_restarted = fast_relay(wired)
        relay_restarted.run(until_caught_up=True)
        relay_restarted.close()
        third = _subscriber(settings, [names.permission_changes], "recs")
        with running_subscriber(third, handle):
            revocations += _revoke_many(wired, "after-restart", 4)
            _wait_for(lambda: all_seen(revocations))
            time.sleep(0.3)

    assert sorted(seen.values()) == [1] * len(revocations), seen
    assert {p for _, p in seen} == {r.position for r in revocations}
    assert third.stats.duplicates > 0
    assert second.stats.handled > 0


def test_failed_handler_is_retried_before_anything_after_it_on_its_partition(
    wired: Services,
) -> None:
    names = topic_names(wired.settings)
    receipts = [
        wired.ledger.revoke("one-subject", "ai-training", content_ids=[f"t{n}"]) for n in range(5)
    ]
    relay = fast_relay(wired)
    relay.run(until_caught_up=True)
    relay.close()
    calls: list[int] = []
    failures = {receipts[1].position: 2}  # the second event fails twice, then succeeds

    def flaky(message: ConsentMessage) -> None:
        position = message.position or 0
        calls.append(position)
        if failures.get(position, 0) > 0:
            failures[position] -= 1
            raise RuntimeError("downstream store unavailable")

    subscriber = _subscriber(
        wired.settings, [names.events], "flaky", retry_initial_s=0.05, retry_max_s=0.1
    )
    with running_subscriber(subscriber, flaky):
        _wait_for(lambda: set(calls) >= {r.position for r in receipts})
    again: list[int] = []
    restarted = _subscriber(wired.settings, [names.events], "flaky")
    with running_subscriber(restarted, lambda m: again.append(m.position or 0)):
        assert restarted.wait_until_assigned(JOIN_TIMEOUT_S)
        time.sleep(0.5)

    p = [r.position for r in receipts]
    assert calls == [p[0], p[1], p[1], p[1], p[2], p[3], p[4]]
    assert subscriber.stats.failures == 2
    assert again == []  # every offset was committed once its handler succeeded


def test_iterating_commits_a_record_once_the_next_is_asked_for(wired: Services) -> None:
    names = topic_names(wired.settings)
    receipts = [wired.ledger.revoke("one-subject", "data-mining", party=f"p{n}") for n in range(5)]
    relay = fast_relay(wired)
    relay.run(until_caught_up=True)
    relay.close()

    taken: list[int] = []
    with _subscriber(wired.settings, [names.events], "iterating") as subscriber:
        for message in subscriber:
            taken.append(message.position or 0)
            if len(taken) == 3:
                break  # the third is not acknowledged: the loop never asked for the fourth
    rest: list[int] = []
    with _subscriber(wired.settings, [names.events], "iterating") as resumed:
        for message in resumed:
            rest.append(message.position or 0)
            if len(rest) == 3:
                break

    p = [r.position for r in receipts]
    assert taken == p[:3]
    assert rest == p[2:]


def _message(
    key: str, value: dict[str, object] | None, position: int, schema: str
) -> ConsentMessage:
    headers = {"position": str(position), "seq": "0", "schema": schema}
    return ConsentMessage("t", 0, position, key, value, headers)


def test_permission_table_keeps_the_newest_state_and_forgets_tombstoned_keys() -> None:
    key = "a1|ai-training|platform|content:t1"
    state = {"subject": "a1", "purpose": "ai-training", "party": "platform", "scope": "content:t1"}
    table = PermissionTable()

    assert table.apply(
        _message(key, {**state, "allowed": True, "position": 5}, 5, SCHEMA_PERMISSION)
    )
    assert table.apply(
        _message("a1", {**state, "allowed": False, "position": 9}, 9, SCHEMA_PERMISSION_CHANGE)
    )
    assert not table.apply(
        _message(key, {**state, "allowed": True, "position": 5}, 5, SCHEMA_PERMISSION)
    )  # a repeat of an older record
    assert table.get("a1", "ai-training", content="t1") == {
        **state,
        "allowed": False,
        "position": 9,
    }
    assert table.apply(_message(key, None, 12, SCHEMA_PERMISSION))
    assert not table.apply(
        _message(key, {**state, "allowed": True, "position": 9}, 9, SCHEMA_PERMISSION)
    )
    assert (len(table), table.position) == (0, 12)
    assert not table.apply(_message("a1", {"subject": "a1"}, 13, "consent.event/1"))


def _docs_example(name: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "kafka.md").read_text()
    after = text.split(f"<!-- example: {name}", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_recommendation_example_in_the_docs_drops_a_track_the_moment_it_is_revoked(
    wired: Services,
) -> None:
    example: dict[str, Any] = {"__name__": "recommendations_example"}
    exec(compile(_docs_example("recommendations"), "docs/kafka.md", "exec"), example)
    names = topic_names(wired.settings)
    example.update(
        BROKER=wired.settings.kafka_bootstrap_servers,
        CHANGES=names.permission_changes,
        PERMISSIONS=names.permissions,
        subscribe=functools.partial(subscribe, **GROUP_OPTIONS),
    )
    ledger = wired.ledger
    ledger.publish_terms(
        "2025-05",
        datetime(2025, 5, 14, tzinfo=UTC),
        [{"purpose": "personalization", "default": "granted"}],
    )
    for artist in ("artist-1", "artist-2"):
        ledger.accept_terms(artist, "2025-05")
    candidates = [("artist-1", "t1"), ("artist-1", "t2"), ("artist-2", "t1"), ("artist-3", "t1")]
    stop = threading.Event()
    with relay_running(fast_relay(wired)) as relay:
        _wait_for(lambda: relay.position() == ledger.ledger_position())
        table = example["follow"](stop)
        try:
            # The group join takes a moment; a first change shows the service is following.
            ledger.grant("artist-9", "personalization", content_ids=["warm-up"])
            _wait_for(lambda: table.get("artist-9", "personalization", content="warm-up"))
            before = example["recommend"](table, candidates)
            revoked = ledger.revoke("artist-1", "personalization", content_ids=["t2"])
            started = time.monotonic()
            _wait_for(lambda: ("artist-1", "t2") not in example["recommend"](table, candidates))
            track_seconds = time.monotonic() - started
            ledger.revoke("artist-2", "personalization")
            _wait_for(lambda: ("artist-2", "t1") not in example["recommend"](table, candidates))
            after = example["recommend"](table, candidates)
        finally:
            stop.set()

    assert before == candidates[:3]  # artist-3 never accepted terms: no consent known
    assert track_seconds < 1.0
    assert after == [("artist-1", "t1")]
    assert table.position >= revoked.position


def test_recent_identities_skip_repeats_even_after_a_gap_and_forget_beyond_the_window() -> None:
    recent = RecentIdentities(window=3)
    for identity in [(1, 0), (3, 0), (3, 1)]:  # (2, 0) failed the first time
        recent.add(identity)

    assert not recent.is_repeat((2, 0))  # the replay of the gap is new
    assert recent.is_repeat((3, 1))
    for identity in [(2, 0), (4, 0), (5, 0), (6, 0)]:
        recent.add(identity)
    assert recent.seen == {(4, 0), (5, 0), (6, 0)}
    assert recent.is_repeat((1, 0))  # older than everything kept
    assert not recent.is_repeat((7, 0))
