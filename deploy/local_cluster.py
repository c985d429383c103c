"""Run the production topology on this machine, smoke-test it, and stop it (no Docker).

`deploy/local-cluster` (this file) starts PostgreSQL if it is down, a local Kafka-protocol
broker (`tests/support/kafka_broker.py`), two API processes and two workers on one fresh
PostgreSQL schema, then checks the whole path through them:

1. a grant and a revocation written on API A are read on API B;
2. the revocation arrives on Kafka (`consent.events.v1`), published by the relay duty;
3. the worker leading the `log` duty is killed (SIGKILL); the other signs a checkpoint
   covering a write made after the kill, within 5 s;
4. an audit export of the ledger verifies offline against the log's public key.

It stops everything it started (and drops its schema) and exits 0 when every step
passed, 1 naming the first that failed. Every wait is bounded; the whole run takes
well under a minute here. Run from the repository root: `deploy/local-cluster`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
POSTGRES = os.environ.get(
    "LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TAKEOVER_SECONDS = 5.0


class SmokeFailure(Exception):
    """A step of the smoke test failed; the message says which and why."""


def free_port() -> int:
    """Return a free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll `check` until it returns a truthy value; raise SmokeFailure after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, psycopg.Error, OSError, SmokeFailure):
            value = None  # a busy machine (e.g. PostgreSQL out of connections): try again
        if value:
            return value
        time.sleep(0.1)
    raise SmokeFailure(f"{what}: not within {timeout:g} s")


class Cluster:
    """The processes of one local cluster, started in order and stopped in reverse."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.schema = f"cluster_{uuid.uuid4().hex[:10]}"
        self.database_url = f"{POSTGRES.split('?')[0]}?schema={self.schema}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.kafka = ""
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LEDGER_DATABASE_URL": self.database_url,
            "LEDGER_DATA_DIR": str(workdir / "data"),
            "LEDGER_LOG_FORMAT": "json",
            "LEDGER_CHECKPOINT_EVERY_EVENTS": "1",
            "LEDGER_CHECKPOINT_EVERY_SECONDS": "3600",
        }

    def cli(self, *args: str) -> str:
        """Run one `consent-ledger` command to completion; return its stdout."""
        done = subprocess.run(
            [PYTHON, "-m", "services.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise SmokeFailure(f"consent-ledger {' '.join(args)}: {done.stderr.decode()[-400:]}")
        return done.stdout.decode()

    def start(self, name: str, *args: str, python_module: str = "services.cli") -> None:
        """Start a long-running process, its output in WORKDIR/NAME.log."""
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [PYTHON, "-m", python_module, *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def up(self) -> tuple[str, str]:
        """Start PostgreSQL if down, the broker, two APIs, two workers; return the API URLs."""
        subprocess.run(["bash", str(ROOT / ".ci/start-postgres")], check=True, timeout=60)
        port = free_port()
        self.start("kafka", "--port", str(port), python_module="tests.support.kafka_broker")
        self.kafka = f"127.0.0.1:{port}"
        wait_for("the Kafka broker", lambda: socket.create_connection(("127.0.0.1", port), 1), 30)
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka
        # One first run creates the schema, the keys and an admin key for the smoke test.
        key = self.cli("keys", "create", "local-cluster", "--role", "admin").splitlines()[-1]
        urls = []
        for name in ("api-a", "api-b"):
            api_port = free_port()
            self.start(name, "serve", "--host", "127.0.0.1", "--port", str(api_port))
            urls.append(f"http://127.0.0.1:{api_port}")
        for name in ("worker-1", "worker-2"):
            self.start(name, "worker")
        for url in urls:
            wait_for(f"{url}/readyz", lambda u=url: httpx.get(f"{u}/readyz").status_code == 200, 60)
        self.key = key
        return urls[0], urls[1]

    def down(self) -> None:
        """Stop every process this cluster started (SIGTERM, then SIGKILL) and drop its schema."""
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.processes.items()):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                print(f"local-cluster: {name} ignored SIGTERM; killing it", file=sys.stderr)
                process.kill()
                process.wait(5)
        try:
            with psycopg.connect(POSTGRES.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        except psycopg.Error as error:
            print(f"local-cluster: could not drop schema {self.schema}: {error}", file=sys.stderr)

    def leader(self, duty: str) -> str | None:
        """Return the name of the worker process leading `duty`, if one recorded it."""
        leaders = orjson.loads(self.cli("worker", "--status", "--json"))
        holder = leaders.get(duty, {}).get("holder", "")
        pid = int(holder.rsplit(":", 1)[1]) if holder else None
        for name, process in self.processes.items():
            if name.startswith("worker") and process.pid == pid:
                return name
        return None


def revocation_on_kafka(bootstrap: str, event_id: str, timeout: float) -> None:
    """Read consent.events.v1 from the start until the revocation's event id appears."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while time.monotonic() < deadline and not partitions:
            partitions = consumer.partitions_for_topic("consent.events.v1")
            if not partitions:
                time.sleep(0.2)
        if not partitions:
            raise SmokeFailure("Kafka: topic consent.events.v1 was never created by the relay")
        assigned = [TopicPartition("consent.events.v1", p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    value = orjson.loads(record.value) if record.value else {}
                    if value.get("event_id") == event_id:
                        if value.get("type") != "ConsentRevoked":
                            raise SmokeFailure(f"Kafka: event {event_id} is a {value.get('type')}")
                        return
        raise SmokeFailure(
            f"Kafka: revocation {event_id} not on consent.events.v1 in {timeout:g} s"
        )
    finally:
        consumer.close()


def smoke(cluster: Cluster, api_a: str, api_b: str) -> None:
    """Run the four checks of the module docstring; raise SmokeFailure at the first failure."""
    headers = {"Authorization": f"Bearer {cluster.key}"}
    subject, question = "artist-local", {"purpose": "ai-training", "party": "acme"}

    def write(api: str, verb: str) -> dict[str, Any]:
        response = httpx.post(f"{api}/v1/subjects/{subject}/{verb}", json=question, headers=headers)
        if response.status_code != 201:
            raise SmokeFailure(f"POST {verb} on {api}: {response.status_code} {response.text}")
        return dict(response.json())

    def check(api: str) -> dict[str, Any]:
        response = httpx.get(
            f"{api}/v1/check", params={"subject": subject, **question}, headers=headers
        )
        if response.status_code != 200:
            raise SmokeFailure(f"GET /v1/check on {api}: {response.status_code} {response.text}")
        return dict(response.json())

    write(api_a, "grants")
    if check(api_b)["allowed"] is not True:
        raise SmokeFailure("a grant written on API A is not allowed on API B")
    revoked = write(api_a, "revocations")
    answer = check(api_b)
    if answer["allowed"] is not False or answer["position"] < revoked["position"]:
        raise SmokeFailure(f"the revocation written on API A is not seen on API B: {answer}")
    print("local-cluster: ok  write on API A, read on API B")

    revocation_on_kafka(cluster.kafka, revoked["event_id"], timeout=30)
    print("local-cluster: ok  the revocation is on Kafka")

    wait_for("first checkpoint", lambda: cluster.leader("log"), 30)
    wait_for(
        "a checkpoint of both writes",
        lambda: (
            int(httpx.get(f"{api_a}/v1/ledger/checkpoint", headers=headers).json()["tree_size"])
            >= 2
        ),
        15,
    )
    leading = wait_for("the log duty's leader", lambda: cluster.leader("log"), 15)
    cluster.processes[leading].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    after = write(api_b, "grants")
    with psycopg.connect(cluster.database_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{cluster.schema}"')

        def checkpoint_after_kill() -> bool:
            row = conn.execute(
                "SELECT 1 FROM checkpoints WHERE tree_size >"
                " (SELECT leaf_index FROM merkle_leaves WHERE position = %s)",
                [after["position"]],
            ).fetchone()
            return row is not None

        wait_for("a checkpoint signed by the stand-by", checkpoint_after_kill, TAKEOVER_SECONDS)
    took = time.monotonic() - killed_at
    now_leading = wait_for("the new leader", lambda: cluster.leader("log") or None, 15)
    if now_leading in (None, leading):
        raise SmokeFailure(f"after {leading} was killed the log is led by {now_leading}")
    print(
        f"local-cluster: ok  {leading} killed; {now_leading} signed the next checkpoint"
        f" in {took:.1f} s"
    )

    export = cluster.workdir / "export"
    cluster.cli("export", str(export))
    public_key = cluster.workdir / "log.pub"
    public_key.write_text(cluster.cli("checkpoint", "--public-key"))
    cluster.cli("verify", str(export), "--public-key", str(public_key))
    print("local-cluster: ok  the audit export verifies")


def main() -> int:
    """Start the cluster, smoke-test it, stop it; return the exit code."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="local-cluster-") as folder:
        workdir = Path(folder)
        cluster = Cluster(workdir)
        try:
            api_a, api_b = cluster.up()
            smoke(cluster, api_a, api_b)
        except (SmokeFailure, subprocess.SubprocessError) as failure:
            print(f"local-cluster: FAILED: {failure}", file=sys.stderr)
            for log in sorted(workdir.glob("*.log")):
                tail = log.read_bytes()[-1500:].decode(errors="replace")
                print(f"--- {log.name} (tail)\n{tail}", file=sys.stderr)
            return 1
        finally:
            cluster.down()
    print(f"local-cluster: all checks passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
