# long module: one benchmark run end to end: server processes, load clients and the table
"""Benchmark the HTTP API: reads and writes beside a trivial route, and group commit
beside one transaction per write.

    python -m bench.api [--seconds 5] [--connections 32] [--rounds 3] [--history N]
                        [--database-url URL | sqlite] [--reads-only]

One run, one fresh PostgreSQL schema (dropped afterwards), or with `--database-url
sqlite` one fresh SQLite file in a temporary folder, measured side by side
(`--reads-only`: only `GET /healthz` and `GET /v1/check`, on one server):

- `ledger`: no HTTP. `--connections` clients (asyncio tasks on one loop, as in the
  server) append grants for `--seconds`, each awaiting its own receipt: through the
  `GroupCommitter` (one committer thread appending what queued while the previous
  transaction ran), then through the `DirectCommitter` (each write in its own
  transaction, from a pool of threads); `--rounds` alternating rounds, merged.
  writes/s, p50, p99, and each round's ratio.
- `http`: `consent-ledger serve` in its own process, loaded by `--connections`
  keep-alive HTTP/1.1 connections from this process (a minimal asyncio client, so the
  load generator costs little of the two cores): `GET /healthz` (no key, no store: the
  floor of the stack) and `GET /v1/check` (a reader key; 1000 subjects with terms and
  grants) in `--rounds` alternating rounds, merged, with each round's ratio (the server
  logs every request as JSON, as in production); `POST /v1/subjects/{s}/grants` (a
  writer key). Then the same server again
  with `LEDGER_API_GROUP_COMMIT=off` for the writes. requests/s, p50, p99; the ratio
  column is against `/healthz` for routes and against one-transaction-per-write for
  group commit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg

from ledger.application import ConsentLedger
from ledger.commands import AcceptTerms, Command, Grant
from services.bootstrap import Services, bootstrap
from services.http.group_commit import Committer, DirectCommitter, GroupCommitter
from services.settings import Settings

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
SUBJECTS = 1000
SEEDED = 1000  # subjects given a history by --history


@dataclass(frozen=True)
class Row:
    """One measured line of the table."""

    area: str
    what: str
    mode: str
    count: int
    seconds: float
    latencies: list[float]
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


# ---------------------------------------------------------------- ledger level


def ledger_writes(
    ledger: ConsentLedger,
    clients: int,
    seconds: float,
    committer: Committer,
    *,
    history: int = 0,
) -> Row:
    """Append grants from `clients` concurrent clients for `seconds`, as the server does.

    The clients are asyncio tasks on one event loop (the server's structure): each
    prepares a grant, hands it to the committer and awaits its own receipt. With
    `history` 0 every write opens a new subject; otherwise it goes to one of the SEEDED
    subjects that `seed_histories` gave `history` events each.
    """
    latencies: list[float] = []
    prefix = uuid.uuid4().hex[:8]
    rng = random.Random(7)

    async def client(n: int, deadline: float) -> None:
        i = 0
        while time.perf_counter() < deadline:
            subject = f"{prefix}-{n}-{i}" if history == 0 else f"seeded-{rng.randrange(SEEDED)}"
            pending = Grant(subject=subject, purpose="ai-training")
            began = time.perf_counter()
            await committer.append(pending)
            latencies.append(time.perf_counter() - began)
            i += 1

    async def run() -> float:
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(client(n, deadline) for n in range(clients)))
        return time.perf_counter() - began

    committer.start()
    try:
        elapsed = asyncio.run(run())
    finally:
        committer.stop()
    mode = "group commit" if isinstance(committer, GroupCommitter) else "1 tx/write"
    return Row("ledger", "append grant", mode, len(latencies), elapsed, latencies)


def alternating_rounds(ledger: ConsentLedger, args: Args) -> list[Row]:
    """Measure group commit and 1 tx/write in `args.rounds` alternating rounds; merge each.

    Alternating rounds spread a noisy neighbour's load over both modes; the merged row
    adds the counts and times of every round, and `ratios` keeps each round's ratio.
    """
    merged: dict[str, Row] = {}
    for _ in range(args.rounds):
        group = ledger_writes(
            ledger, args.connections, args.seconds, GroupCommitter(ledger), history=args.history
        )
        single = ledger_writes(
            ledger, args.connections, args.seconds, DirectCommitter(ledger), history=args.history
        )
        ROUND_RATIOS.append(group.rate / single.rate if single.rate else float("nan"))
        for row in (group, single):
            merge(merged, row.mode, row)
    return list(merged.values())


def merge(merged: dict[str, Row], key: str, row: Row) -> None:
    """Add `row`'s counts, times and latencies to the row held under `key`."""
    before = merged.get(key)
    merged[key] = (
        row
        if before is None
        else Row(
            row.area,
            row.what,
            row.mode,
            before.count + row.count,
            before.seconds + row.seconds,
            before.latencies + row.latencies,
            before.errors + row.errors,
        )
    )


ROUND_RATIOS: list[float] = []
READ_RATIOS: list[float] = []
SERVER_CPU: dict[str, tuple[float, int]] = {}
"""The server process's CPU seconds during each route's measured phases, and their
requests: a cost per request that a busy neighbour moves less than it moves req/s."""


# ------------------------------------------------------------------ HTTP level


@dataclass
class Load:
    """Results of one load phase, gathered by every connection."""

    latencies: list[float]
    errors: int = 0


async def _connection(
    port: int, request: Callable[[int], bytes], deadline: float, load: Load, offset: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            writer.write(request(i))
            status = int((await reader.readline()).split(b" ", 2)[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            load.latencies.append(time.perf_counter() - began)
            if status >= 300:
                load.errors += 1
            i += 1_000_003  # each connection walks its own sequence of subjects
    finally:
        writer.close()


def http_load(
    port: int, connections: int, seconds: float, request: Callable[[int], bytes]
) -> tuple[Load, float]:
    """Drive `connections` keep-alive connections for `seconds`; return the load and time."""

    async def run() -> tuple[Load, float]:
        load = Load([])
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()
        await asyncio.gather(
            *(_connection(port, request, deadline, load, n) for n in range(connections))
        )
        return load, time.perf_counter() - began

    return asyncio.run(run())


def get(path: Callable[[int], str], key: str | None) -> Callable[[int], bytes]:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return lambda i: f"GET {path(i)} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()


def post(path: Callable[[int], str], body: bytes, key: str) -> Callable[[int], bytes]:
    def request(i: int) -> bytes:
        head = (
            f"POST {path(i)} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return request


class ServerProcess:
    """`consent-ledger serve` on a free port, logging JSON as in production (to a file
    in the run's temporary folder, whose tail a failed start shows)."""

    def __init__(self, database_url: str, data_dir: Path, *, group_commit: bool) -> None:
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.log_file = self.log.open("wb")
        env = {
            **os.environ,
            "LEDGER_LOG_FORMAT": "json",
            "LEDGER_API_GROUP_COMMIT": "on" if group_commit else "off",
            # the load generator uses one key per role: measure the server, not the limiter
            "LEDGER_RATE_LIMIT_PER_SECOND": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "serve", "--port", str(self.port),
             "--database-url", database_url, "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=self.log_file, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n")
                    if b" 200 " in probe.recv(200):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the API server did not start; its log ends:\n{tail}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """Return the CPU time (user and system) the server process used so far (Linux)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log_file.close()


def http_phase(
    server: ServerProcess, what: str, mode: str, request: Callable[[int], bytes], args: Args
) -> Row:
    http_load(server.port, args.connections, min(1.0, args.seconds / 4), request)  # warm up
    began = server.cpu_seconds()
    load, elapsed = http_load(server.port, args.connections, args.seconds, request)
    used, count = SERVER_CPU.get(what, (0.0, 0))
    SERVER_CPU[what] = (used + server.cpu_seconds() - began, count + len(load.latencies))
    return Row("http", what, mode, len(load.latencies), elapsed, load.latencies, load.errors)


def read_rounds(server: ServerProcess, check: Callable[[int], bytes], args: Args) -> list[Row]:
    """`GET /healthz` then `GET /v1/check` on one server, `args.rounds` times; merged.

    Alternating rounds spread a busy neighbour's load over both routes; `READ_RATIOS`
    keeps each round's ratio.
    """
    healthz = get(lambda i: "/healthz", None)
    merged: dict[str, Row] = {}
    for _ in range(args.rounds):
        rows = [
            http_phase(server, "GET /healthz", "-", healthz, args),
            http_phase(server, "GET /v1/check", "-", check, args),
        ]
        floor, read = rows
        READ_RATIOS.append(read.rate / floor.rate if floor.rate else float("nan"))
        for row in rows:
            merge(merged, row.what, row)
    return list(merged.values())


# ----------------------------------------------------------------------- main


@dataclass(frozen=True)
class Args:
    seconds: float
    connections: int
    database_url: str
    rounds: int
    history: int
    reads_only: bool = False

    @property
    def sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def seed(services: Services) -> None:
    """Terms, acceptances and grants for SUBJECTS subjects (what /v1/check reads)."""
    ledger = services.ledger
    ledger.publish_terms(
        "2025-05",
        datetime(2025, 5, 14, tzinfo=UTC),
        [{"purpose": "ai-training", "default": "denied"}],
    )
    pendings: list[Command] = []
    for n in range(SUBJECTS):
        pendings.append(AcceptTerms(subject=f"artist-{n}", version="2025-05"))
        if n % 2:
            pendings.append(Grant(subject=f"artist-{n}", purpose="ai-training"))
    for start in range(0, len(pendings), 500):
        ledger.execute_many(pendings[start : start + 500])
    services.projector.catch_up()


def seed_histories(ledger: ConsentLedger, events: int) -> None:
    """Give each of the SEEDED subjects `events` grants (appended 500 per transaction)."""
    pendings = [
        Grant(subject=f"seeded-{n}", purpose="ai-training")
        for _ in range(events)
        for n in range(SEEDED)
    ]
    for start in range(0, len(pendings), 500):
        ledger.execute_many(pendings[start : start + 500])


def run(args: Args) -> list[Row]:
    base = args.database_url.split("?")[0]
    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        url = f"sqlite:///{folder}/bench.db" if args.sqlite else f"{base}?schema={schema}"
        services = bootstrap(Settings(database_url=url, data_dir=data_dir))
        try:
            seed(services)
            reader_key = services.api_keys.create("bench-reader", "reader")[1]
            writer_key = services.api_keys.create("bench-writer", "writer")[1]

            if args.history:
                seed_histories(services.ledger, args.history)
            if not args.reads_only:
                rows += alternating_rounds(services.ledger, args)

            grant_body = orjson.dumps({"purpose": "ai-training", "content_ids": ["track-1"]})
            check = get(
                lambda i: f"/v1/check?subject=artist-{i % SUBJECTS}&purpose=ai-training",
                reader_key,
            )
            write = post(lambda i: f"/v1/subjects/http-{i % 5000}/grants", grant_body, writer_key)
            server = ServerProcess(url, data_dir, group_commit=True)
            try:
                rows += read_rounds(server, check, args)
                if not args.reads_only:
                    rows.append(http_phase(server, "POST grants", "group commit", write, args))
            finally:
                server.stop()
            if not args.reads_only:
                server = ServerProcess(url, data_dir, group_commit=False)
                try:
                    rows.append(http_phase(server, "POST grants", "1 tx/write", write, args))
                finally:
                    server.stop()
        finally:
            services.close()
            if not args.sqlite:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return rows


def table(rows: list[Row]) -> str:
    """Render the rows; ratios against /healthz (routes) or 1 tx/write (group commit)."""
    healthz = next((r.rate for r in rows if r.what == "GET /healthz"), 0.0)
    per_write = {r.area: r.rate for r in rows if r.mode == "1 tx/write"}
    header = ["area", "what", "mode", "requests", "req/s", "p50 ms", "p99 ms", "errors", "ratio"]
    body = []
    for r in rows:
        if r.mode == "group commit" and per_write.get(r.area):
            ratio = f"{r.rate / per_write[r.area]:.1f}x of 1 tx/write"
        elif r.area == "http" and healthz and r.mode == "-" and r.what != "GET /healthz":
            ratio = f"{r.rate / healthz:.2f}x of /healthz"
        else:
            ratio = "-"
        body.append(
            [
                r.area,
                r.what,
                r.mode,
                str(r.count),
                f"{r.rate:,.0f}",
                f"{r.percentile(0.50):.1f}",
                f"{r.percentile(0.99):.1f}",
                str(r.errors),
                ratio,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in body:
        cells = [
            c.ljust(w) if i < 3 or i == 8 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of the ledger-level writes, and of GET /healthz and GET /v1/check",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help=f"ledger-level writes go to {SEEDED} subjects with this many events each "
        "(default 0: every write opens a new subject)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL server (a fresh schema is made and dropped), or `sqlite` "
        "(a fresh file in a temporary folder)",
    )
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="measure only GET /healthz and GET /v1/check (no ledger-level or HTTP writes)",
    )
    ns = parser.parse_args(argv)
    args = Args(ns.seconds, ns.connections, ns.database_url, ns.rounds, ns.history, ns.reads_only)
    if not (args.database_url.startswith("postgres") or args.sqlite):
        print("bench.api: pass a postgresql:// URL or `sqlite`", file=sys.stderr)
        return 2
    rows = run(args)
    history = f"{args.history} events per subject" if args.history else "new subjects"
    store = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"HTTP API on {store}: {args.connections} concurrent clients, "
        f"{args.seconds:g} s per phase, {os.cpu_count()} cores; ledger writes to {history}"
    )
    print(table(rows))
    if ROUND_RATIOS:
        ratios = ", ".join(f"{r:.1f}x" for r in ROUND_RATIOS)
        print(f"ledger group commit / 1 tx/write, round by round: {ratios}")
    ratios = ", ".join(f"{r:.2f}x" for r in READ_RATIOS)
    print(f"GET /v1/check / GET /healthz, round by round: {ratios}")
    cost = {what: used / count * 1e6 for what, (used, count) in SERVER_CPU.items() if count}
    if "GET /healthz" in cost and "GET /v1/check" in cost:
        floor, read = cost["GET /healthz"], cost["GET /v1/check"]
        print(
            f"server CPU per request: "
            f"/healthz {floor:,.0f} µs, /v1/check {read:,.0f} µs, "
            f"ratio {floor / read:.2f}x ("
            + (
                "SQLite runs in the server: counted)"
                if args.sqlite
                else "PostgreSQL's not counted)"
            )
        )
    for row in rows:
        if row.errors:
            print(f"{row.what} ({row.mode}): {row.errors} answers were not 2xx", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
