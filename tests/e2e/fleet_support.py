"""Several `consent-ledger serve` processes on one database, and clients that fail over.

Each write carries its own Idempotency-Key and is retried, with the same key and on any
live server, until acknowledged: after a crash the key's answer is recovered, never
applied twice.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.e2e.server_support import Server, start_server

SUBJECTS = [f"s{n}" for n in range(10)]  # overlapping: every client writes to all of them
PURPOSES = ["ai-training", "data-mining"]
# A killed writer's key is recovered after the lease: 15 s instead of the default 60 s
# keeps the crash test short. A takeover reuses the key's event id, so even a slow live
# request taken over appends once; a lease longer than the slowest request (on this
# loaded 2-core machine) only spares writes in flight a needless second execution.
FAST_RECOVERY = ("LEDGER_IDEMPOTENCY_LEASE_SECONDS", "15")


class Fleet:
    """N API processes on one database and data dir; kill -9 and restart any of them."""

    def __init__(self, database_url: str, data_dir: Path, size: int) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        first = start_server(database_url, data_dir, FAST_RECOVERY)
        assert first.admin_key is not None, first.banner
        self.admin_key = first.admin_key
        self.servers = [first] + [self._start() for _ in range(size - 1)]
        self.lock = threading.Lock()
        self.kills = 0

    def _start(self) -> Server:
        return start_server(self.database_url, self.data_dir, FAST_RECOVERY)

    def urls(self) -> list[str]:
        """Return the URLs of the servers believed alive."""
        with self.lock:
            return [s.url for s in self.servers]

    def kill_and_restart(self, index: int) -> None:
        """SIGKILL server `index` (no shutdown of any kind), then start a new one there."""
        with self.lock:
            victim = self.servers[index]
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)
        replacement = self._start()
        with self.lock:
            self.servers[index] = replacement
            self.kills += 1

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers:
            server.stop()

    def services(self) -> Services:
        """Return services wired to the fleet's database (close them after use)."""
        return bootstrap(Settings(database_url=self.database_url, data_dir=self.data_dir))


@dataclass
class Outcome:
    """What the clients saw."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> event id
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged tries
    retries: int = 0
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def p99_ms(self) -> float:
        """Return the 99th percentile latency of the acknowledged tries, in ms."""
        return statistics.quantiles(self.latencies, n=100)[98] * 1000


class Targets(Protocol):
    """Where clients write: the servers believed alive, and the key to write with."""

    admin_key: str

    def urls(self) -> list[str]:
        """Return the URLs of the servers believed alive."""
        ...


def write_until_acknowledged(
    fleet: Targets,
    client: httpx.Client,
    outcome: Outcome,
    rng: random.Random,
    deadline: float,
    *,
    on_unavailable: Callable[[httpx.Response], None] | None = None,
) -> None:
    """Make one random grant or revocation; retry with its key until it is acknowledged.

    `on_unavailable` sees every 503 answer before the write is retried.
    """
    key = uuid.uuid4().hex
    kind = rng.choice(["grants", "revocations"])
    subject = rng.choice(SUBJECTS)
    body = {"purpose": rng.choice(PURPOSES), "content_ids": [f"t{rng.randrange(5)}"]}
    headers = {"Authorization": f"Bearer {fleet.admin_key}", "Idempotency-Key": key}
    while time.monotonic() < deadline:
        url = rng.choice(fleet.urls())
        started = time.perf_counter()
        try:
            answer = client.post(f"{url}/v1/subjects/{subject}/{kind}", json=body, headers=headers)
        except httpx.TransportError:
            with outcome.lock:
                outcome.retries += 1
            continue
        took = time.perf_counter() - started
        if answer.status_code == 201:
            with outcome.lock:
                outcome.acknowledged[key] = answer.json()["event_id"]
                outcome.latencies.append(took)
            return
        if answer.status_code == 503 and on_unavailable is not None:
            on_unavailable(answer)
        if answer.status_code in (503, 409):  # store busy, or the key's first try in flight
            with outcome.lock:
                outcome.retries += 1
            time.sleep(0.05)
            continue
        with outcome.lock:
            outcome.wrong.append(f"{answer.status_code}: {answer.text[:200]}")
        return
    with outcome.lock:
        outcome.wrong.append(f"write {key} not acknowledged by the deadline")


def stored_event_ids(services: Services) -> list[str]:
    """Return the ids of every grant and revocation of the fleet's subjects, in order."""
    return [
        str(item.entry.event.event_id)
        for subject in SUBJECTS
        for item in services.ledger.history(subject)
    ]


def read_models_disagree_with_replay(services: Services) -> list[str]:
    """Catch the read models up; return every question they answer unlike replay."""
    services.projector.catch_up()
    wrong = []
    for subject in SUBJECTS:
        for purpose in PURPOSES:
            for content in (None, *(f"t{n}" for n in range(5))):
                view = services.reader.check(subject, purpose, content=content)
                replay = services.ledger.check(subject, purpose, content=content)
                if (view.allowed, view.basis) != (replay.allowed, replay.basis):
                    wrong.append(f"{subject}/{purpose}/{content}: {view} != {replay}")
    return wrong
