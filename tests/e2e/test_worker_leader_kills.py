"""Worker duty leaders killed while writes go on.

Two `consent-ledger worker` processes (every duty each) on one PostgreSQL ledger and the
test broker, one `consent-ledger serve` process taking writes (grants, revocations and
grants about to expire, so the expiry duty works too). The current leader of each duty
(projector, log, relay, expiry) is SIGKILLed at a random moment and restarted, until each
duty lost its leader at least 30 times. The API process competes for the projector lease
too: when it leads the projector, it is the one killed. Afterwards:

- every acknowledged write is in the ledger exactly once, and each expired grant has
  exactly one `ConsentExpired`;
- the read models equal replay;
- every record the relay derives from the ledger is on Kafka, and a `Subscriber`
  handles each once, dropping exactly the repeats the relay's restarts published;
- every signed checkpoint verifies, and each is consistent with the one before it (a
  consistency proof from the log's own proof code, checked against both signed roots).

Prints its figures (kills per duty, takeover times, counts) for docs/reliability.md.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from ledger.checkpoint import verify_signed_checkpoint
from ledger.events import ConsentExpired, ConsentGranted, ConsentRevoked, Entry
from ledger.merkle import verify_consistency
from services.bootstrap import Services, bootstrap
from services.kafka.relay import RelayPositions, build_relay, topic_names
from services.kafka.wire import HEADER_SEQ
from services.settings import Settings
from services.subscriber import ConsentMessage, Subscriber
from services.worker import DUTIES
from tests.e2e.fleet_support import (
    Fleet,
    Outcome,
    Workers,
    duty_leaders,
    post_until_acknowledged,
    read_models_disagree_with_replay,
    write_until_acknowledged,
)
from tests.integration.relay_support import (
    GROUP_OPTIONS,
    cli_env,
    read_topic,
    running_subscriber,
    with_kafka,
)
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

KILLS_PER_DUTY = 30
WRITERS = 4  # few: PostgreSQL's 100 connections are shared by the whole machine
EXPIRING_SUBJECTS = [f"e{n}" for n in range(20)]
TAKEOVER_LIMIT_SECONDS = 30.0  # a bound for the loop; the figures are far below it


@pytest.fixture
def ledger_settings(
    postgres_server: str, tmp_path: Path, kafka_bootstrap: str
) -> Iterator[Settings]:
    """A fresh PostgreSQL schema (named after this branch's test) on the test broker."""
    schema = f"t_h13faults_{uuid.uuid4().hex[:8]}"
    base = postgres_server.split("?")[0]
    settings = Settings(
        database_url=f"{base}?schema={schema}",
        data_dir=tmp_path / "data",
        checkpoint_every_events=25,
        checkpoint_every_seconds=1.0,
    )
    yield with_kafka(settings, kafka_bootstrap, "leader-kills")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def all_entries(services: Services) -> list[Entry]:
    """Return every ledger entry, in order."""
    entries: list[Entry] = []
    while page := services.ledger.entries_after(entries[-1].position if entries else 0, 1000):
        entries.extend(page)
    return entries


def identity(topic: str, position: int | None, seq: int) -> tuple[str, int | None, int]:
    return (topic, position, seq)


@dataclass
class Kills:
    """What the kill loop did: kills per duty, takeover seconds per duty, victims by kind."""

    per_duty: Counter[str] = field(default_factory=Counter)
    takeovers: dict[str, list[float]] = field(default_factory=dict)
    victims: Counter[str] = field(default_factory=Counter)  # "worker" / "api"

    def report(self) -> str:
        def spread(values: list[float]) -> str:
            return f"p50 {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

        return (
            f"SIGKILLed {self.victims['worker']} workers, {self.victims['api']} API processes; "
            f"kills per duty {dict(self.per_duty)}\n"
            + "\n".join(f"takeover {d}: {spread(t)}" for d, t in self.takeovers.items())
        )


def kill_leaders(
    services: Services, workers: Workers, fleet: Fleet, rng: random.Random, deadline: float
) -> Kills:
    """SIGKILL the leader of the least-killed duty at a random moment, restart it, and
    time the takeover (kill to a live process recording the lease), until every duty
    lost its leader KILLS_PER_DUTY times."""
    duties = list(DUTIES)
    kills = Kills(takeovers={d: [] for d in duties})

    def roles() -> dict[int, str]:
        found = dict.fromkeys(workers.pids(), "worker")
        found.update(dict.fromkeys((s.process.pid for s in fleet.servers), "api"))
        return found

    def every_duty_led() -> bool:
        leaders, alive = duty_leaders(services), roles()
        return all(leaders.get(d) in alive for d in duties)

    while min(kills.per_duty[d] for d in duties) < KILLS_PER_DUTY:
        assert time.monotonic() < deadline, f"only {dict(kills.per_duty)} kills in time"
        duty = min(duties, key=lambda d: (kills.per_duty[d], rng.random()))
        wait_until(every_duty_led, TAKEOVER_LIMIT_SECONDS, "every duty led")
        time.sleep(rng.uniform(0.0, 1.0))  # a random moment in the duties' work
        leaders, alive = duty_leaders(services), roles()
        victim = leaders[duty]
        if victim not in alive:
            continue  # a takeover is being recorded right now; ask again
        kind = alive[victim]
        led = [d for d in duties if leaders.get(d) == victim]
        killed_at = time.monotonic()
        if kind == "api":
            fleet.kill(0)
        else:
            workers.kill(victim)
        kills.victims[kind] += 1
        kills.per_duty.update(led)

        def taken_over(led: list[str] = led, victim: int = victim) -> bool:
            now, alive = duty_leaders(services), roles()
            return all(now.get(d) not in (None, victim) and now.get(d) in alive for d in led)

        wait_until(taken_over, TAKEOVER_LIMIT_SECONDS, f"takeover of {led}")
        took = time.monotonic() - killed_at
        for d in led:
            kills.takeovers[d].append(took)
        if kind == "api":
            fleet.restart(0)
        else:
            workers.restart(victim)
    return kills


def all_expiries(services: Services) -> Counter[str]:
    """Return how many `ConsentExpired` the ledger holds per grant event id."""
    return Counter(
        str(e.event.grant_event_id)
        for e in all_entries(services)
        if isinstance(e.event, ConsentExpired)
    )


def wait_until_caught_up(services: Services, settings: Settings) -> int:
    """Wait until projector, log, checkpoints and relay reflect the whole ledger; return
    its event count."""
    names = topic_names(settings)
    relay_positions = RelayPositions(services.database)
    head = services.ledger.ledger_position()
    count = len(all_entries(services))

    def caught_up() -> bool:
        latest = services.log.checkpoint()
        return (
            services.projector.position() == head
            and services.log.tracking()[1] == count
            and latest is not None
            and latest.tree_size == count
            and relay_positions.get(names.events) == head
            and relay_positions.get(names.checkpoints) == count
        )

    wait_until(caught_up, 60, "the workers catching up with the ledger")
    return count


def all_of(wanted: set[tuple[int | None, int]]) -> Callable[[list[ConsentMessage]], bool]:
    """Return a predicate: every wanted (position, seq) has been read."""
    return lambda messages: wanted <= {(m.position, m.seq) for m in messages}


def records_on_kafka(services: Services, settings: Settings, entries: list[Entry]) -> str:
    """Assert every record the relay derives is on Kafka and a subscriber handles each
    once, dropping exactly the repeats; return the counts."""
    relay = build_relay(services)
    try:
        derived = relay.records_for(entries)
    finally:
        relay.close()
    expected = Counter(
        identity(r.topic, r.position, int(dict(r.headers)[HEADER_SEQ])) for r in derived
    )
    assert set(expected.values()) == {1}
    topics = sorted({t for t, _, _ in expected})
    servers = settings.kafka_bootstrap_servers or ""
    consumed: list[ConsentMessage] = []
    for topic in topics:
        wanted = {(p, s) for t, p, s in expected if t == topic}
        consumed += read_topic(servers, topic, until=all_of(wanted), timeout_s=120)
    on_kafka = Counter(identity(m.topic, m.position, m.seq) for m in consumed)
    missing, extra = set(expected) - set(on_kafka), set(on_kafka) - set(expected)
    assert not missing, f"records never on Kafka: {sorted(missing)[:5]}"
    assert not extra, f"records on Kafka the ledger does not derive: {sorted(extra)[:5]}"
    handled: Counter[tuple[str, int | None, int]] = Counter()
    subscriber = Subscriber(
        topics,
        f"leader-kills-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=servers,
        **GROUP_OPTIONS,
    )
    with running_subscriber(
        subscriber, lambda m: handled.update([identity(m.topic, m.position, m.seq)])
    ):
        stats = subscriber.stats
        wait_until(lambda: stats.handled + stats.duplicates >= len(consumed), 120, "subscriber")
    assert set(handled.values()) == {1}, "the subscriber handled a record twice"
    assert set(handled) == set(expected)
    assert subscriber.stats.duplicates == len(consumed) - len(expected)
    return (
        f"records consumed {len(consumed)} for {len(expected)} derived on {len(topics)} topics,"
        f" duplicates dropped by the subscriber {subscriber.stats.duplicates}"
    )


def checkpoints_consistent(services: Services, settings: Settings, count: int) -> str:
    """Assert each signed checkpoint verifies and is consistent with the one before it
    (and each reached Kafka); return the counts."""
    stored = list(services.log.iter_checkpoints())
    trusted = services.log.key.public_key_b64()
    previous = None
    for checkpoint in stored:
        head = verify_signed_checkpoint(checkpoint.signed.to_json(), trusted)
        if previous is not None:
            proof = services.log.consistency(previous.tree_size, head.tree_size)
            verify_consistency(
                previous.tree_size, head.tree_size, proof.proof, previous.root_hash, head.root_hash
            )
        previous = head
    assert previous is not None
    assert previous.tree_size == count
    sizes = {c.tree_size for c in stored}
    published = read_topic(
        settings.kafka_bootstrap_servers or "",
        topic_names(settings).checkpoints,
        until=lambda ms: sizes <= {m.position for m in ms},
        timeout_s=60,
    )
    assert {m.position for m in published} == sizes
    return (
        f"checkpoints checked {len(stored)} ({len(stored) - 1} consistency proofs),"
        f" checkpoint records {len(published)}"
    )


def test_worker_duty_leaders_killed_30_times_each_lose_double_and_skip_nothing(
    ledger_settings: Settings, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    outcome = Outcome()
    expiring: dict[str, datetime] = {}  # acknowledged expiring grant -> its expiry
    done = threading.Event()
    deadline = time.monotonic() + 1200  # ~4 min here unloaded; 12 min at load 14
    env = {
        **cli_env(ledger_settings),
        "LEDGER_CHECKPOINT_EVERY_EVENTS": str(ledger_settings.checkpoint_every_events),
        "LEDGER_CHECKPOINT_EVERY_SECONDS": str(ledger_settings.checkpoint_every_seconds),
    }
    with ExitStack() as stack:
        services = bootstrap(ledger_settings)  # tables and keys before any process starts
        stack.callback(services.close)
        with ExitStack() as processes:
            workers = Workers(env, tmp_path, size=2)
            processes.callback(workers.stop)
            fleet = Fleet(ledger_settings.database_url, ledger_settings.resolved_data_dir(), 1)
            processes.callback(fleet.stop)

            def writer(n: int) -> None:
                local = random.Random(seed + n)
                with httpx.Client(timeout=60) as http:
                    while not done.is_set():
                        write_until_acknowledged(fleet, http, outcome, local, deadline)

            def expiring_writer() -> None:
                local = random.Random(seed - 1)
                with httpx.Client(timeout=60) as http:
                    while not done.is_set():
                        # A write retried across API restarts on this loaded machine may
                        # land after its expiry; it is refused (422), rightly, and counted.
                        expires = datetime.now(UTC) + timedelta(seconds=local.uniform(20, 30))
                        body = {"purpose": "ai-training", "expires_at": expires.isoformat()}
                        path = f"/v1/subjects/{local.choice(EXPIRING_SUBJECTS)}/grants"
                        event_id = post_until_acknowledged(
                            fleet, http, outcome, local, path, dict(body), deadline, refusals={422}
                        )
                        if event_id is not None:
                            expiring[event_id] = expires
                        done.wait(0.2)

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
            threads.append(threading.Thread(target=expiring_writer))
            for thread in threads:
                thread.start()
            try:
                kills = kill_leaders(services, workers, fleet, rng, deadline)
            finally:
                done.set()
                for thread in threads:
                    thread.join()
            print(
                f"\nleader kills (seed {seed}): {kills.report()}\n"
                f"worker starts refused by PostgreSQL and retried: {workers.start_retries}"
            )
            assert not outcome.wrong, outcome.wrong[:5]
            try:
                wait_until(lambda: set(all_expiries(services)) >= set(expiring), 120, "expiries")
            except pytest.fail.Exception:
                missing = set(expiring) - set(all_expiries(services))
                lines = [
                    line
                    for log in sorted(tmp_path.glob("worker-*.log"))
                    for line in log.read_text().splitlines()
                    if "expir" in line and ("warning" in line or "error" in line)
                ]
                pytest.fail(f"never expired: {sorted(missing)[:5]}; worker logs: {lines[-10:]}")
            count = wait_until_caught_up(services, ledger_settings)
        entries = all_entries(services)
        assert len(entries) == count, "a process wrote after the workers caught up"
        writes = [
            str(e.event.event_id)
            for e in entries
            if isinstance(e.event, ConsentGranted | ConsentRevoked)
        ]
        assert len(writes) == len(set(writes)), f"seed {seed}: a write was applied twice"
        assert set(writes) == set(outcome.acknowledged.values()), "ledger != acknowledged"
        expired = all_expiries(services)
        assert set(expired) == set(expiring), "an expiry of a grant that was not written"
        assert set(expired.values()) == {1}, f"seed {seed}: a grant expired twice"
        assert read_models_disagree_with_replay(services) == []
        kafka = records_on_kafka(services, ledger_settings, entries)
        checkpoints = checkpoints_consistent(services, ledger_settings, count)
    print(
        f"writes acknowledged {len(outcome.acknowledged)} ({len(expiring)} expiring grants,"
        f" {sum(expired.values())} expiries, {outcome.refused} refused as already expired,"
        f" {outcome.retries} retries), events {count}\n"
        f"{kafka}\n{checkpoints}"
    )
