"""Several `consent-ledger serve` (and `worker`) processes on one database, and clients
that fail over.

Each write carries its own Idempotency-Key and is retried, with the same key and on any
live server, until acknowledged: after a crash the key's answer is recovered, never
applied twice.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
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
# A process that exits at once (PostgreSQL refusing connections: the machine's
# `max_connections` is shared) is started again, as a supervisor would, this many times.
START_ATTEMPTS = 5


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
        for attempt in range(1, START_ATTEMPTS):
            try:
                return start_server(self.database_url, self.data_dir, FAST_RECOVERY)
            except AssertionError as error:
                if "exited before serving" not in str(error):
                    raise
                time.sleep(0.5 * attempt)
        return start_server(self.database_url, self.data_dir, FAST_RECOVERY)

    def urls(self) -> list[str]:
        """Return the URLs of the servers believed alive."""
        with self.lock:
            return [s.url for s in self.servers]

    def kill_and_restart(self, index: int) -> None:
        """SIGKILL server `index` (no shutdown of any kind), then start a new one there."""
        self.kill(index)
        self.restart(index)

    def kill(self, index: int) -> None:
        """SIGKILL server `index`; clients keep trying its URL until `restart(index)`."""
        with self.lock:
            victim = self.servers[index]
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)

    def restart(self, index: int) -> None:
        """Start a new server in place of the killed server `index`."""
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
    refused: int = 0  # expected refusals (nothing written)
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
    kind = rng.choice(["grants", "revocations"])
    subject = rng.choice(SUBJECTS)
    body = {"purpose": rng.choice(PURPOSES), "content_ids": [f"t{rng.randrange(5)}"]}
    post_until_acknowledged(
        fleet,
        client,
        outcome,
        rng,
        f"/v1/subjects/{subject}/{kind}",
        body,
        deadline,
        on_unavailable=on_unavailable,
    )


def post_until_acknowledged(
    fleet: Targets,
    client: httpx.Client,
    outcome: Outcome,
    rng: random.Random,
    path: str,
    body: Mapping[str, object],
    deadline: float,
    *,
    refusals: Collection[int] = (),
    on_unavailable: Callable[[httpx.Response], None] | None = None,
) -> str | None:
    """POST one write to any live server; retry with its key until acknowledged.

    Returns the acknowledged event id (also recorded in `outcome`), or None. A status in
    `refusals` is a refusal the caller expects may happen (counted in `outcome.refused`,
    nothing written); any other answer than 201, 409 or 503 is recorded as wrong.
    `on_unavailable` sees every 503 answer before the write is retried.
    """
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {fleet.admin_key}", "Idempotency-Key": key}
    while time.monotonic() < deadline:
        url = rng.choice(fleet.urls())
        started = time.perf_counter()
        try:
            answer = client.post(f"{url}{path}", json=body, headers=headers)
        except httpx.TransportError:
            with outcome.lock:
                outcome.retries += 1
            time.sleep(0.01)  # the server is gone: do not spin while it restarts
            continue
        took = time.perf_counter() - started
        if answer.status_code == 201:
            event_id: str = answer.json()["event_id"]
            with outcome.lock:
                outcome.acknowledged[key] = event_id
                outcome.latencies.append(took)
            return event_id
        if answer.status_code == 503 and on_unavailable is not None:
            on_unavailable(answer)
        if answer.status_code in (503, 409):  # store busy, or the key's first try in flight
            with outcome.lock:
                outcome.retries += 1
            time.sleep(0.05)
            continue
        with outcome.lock:
            if answer.status_code in refusals:
                outcome.refused += 1
            else:
                outcome.wrong.append(f"{answer.status_code}: {answer.text[:200]}")
        return None
    with outcome.lock:
        outcome.wrong.append(f"write {key} not acknowledged by the deadline")
    return None


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


WORKER_READY = "worker running duties"  # the worker's one line on stdout once its duties run


class Workers:
    """`consent-ledger worker` processes (every duty each) on one ledger; SIGKILL any of them."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, size: int) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.started = 0
        self.start_retries = 0
        self.processes: list[subprocess.Popen[str]] = []
        for _ in range(size):
            self.processes.append(self._start())

    def _start(self) -> subprocess.Popen[str]:
        """Start a worker and return once it runs its duties (it printed its line)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            self.started += 1
            log = self.log_dir / f"worker-{self.started}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "services.cli.main", "worker"],
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=sink,
                    text=True,
                )
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.startswith(WORKER_READY):
                return process
            process.wait(10)
            process.stdout.close()
            self.start_retries += 1
            time.sleep(0.5 * attempt)
        raise AssertionError(f"the worker did not start {START_ATTEMPTS} times, see {log}")

    def pids(self) -> list[int]:
        """Return the pids of the workers started and not killed."""
        return [p.pid for p in self.processes]

    def kill(self, pid: int) -> None:
        """SIGKILL worker `pid` (no shutdown of any kind); `restart(pid)` replaces it."""
        victim = self.processes[self.pids().index(pid)]
        os.kill(pid, signal.SIGKILL)
        victim.wait(10)
        if victim.stdout is not None:
            victim.stdout.close()

    def restart(self, pid: int) -> None:
        """Start a new worker in place of the killed worker `pid`."""
        self.processes[self.pids().index(pid)] = self._start()

    def stop(self) -> None:
        """Stop every worker with SIGTERM (SIGKILL after 15 s)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def duty_leaders(services: Services) -> dict[str, int]:
    """Return `{duty: pid}` of the process each duty's leader recorded last."""
    return {
        duty: int(row["holder"].rsplit(":", 1)[1])
        for duty, row in services.leases.leaders().items()
    }
