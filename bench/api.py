# long module: one benchmark run end to end: server processes, load clients and the table
"""Benchmark the HTTP API: reads and writes beside a trivial route, and group commit
beside one transaction per write.

    python -m bench.api [--seconds 5] [--connections 32] [--rounds 3] [--history N]
                        [--database-url URL | sqlite] [--reads-only] [--workers N]

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
  writer key). Then the same server again with `LEDGER_API_GROUP_COMMIT=off` for the
  writes; with `--workers N`, also `serve --workers N` for `/healthz` and the grants.
  requests/s, p50, p99, a ratio against one transaction per write (group commit) and
  one against the same server's `/healthz` (routes), and the cores each part kept busy
  (server, its PostgreSQL backends, this load generator, the whole machine): the
  profile that bounds a ratio. A last line prints issue 14's three HTTP ratios beside
  their targets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
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
    cpu: Cpu | None = None  # cores each part kept busy, HTTP phases only
    server: str = ""  # which server answered (HTTP rows): ratios compare within one

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


@dataclass(frozen=True)
class Cpu:
    """CPU time per second of a phase (cores busy): server, its PostgreSQL backends, load."""

    server: float
    postgres: float
    load: float
    machine: float  # every process on the machine, other sessions' included


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int, *, reaped: bool = False) -> float:
    """Return the CPU seconds (user + system) a process has used, 0 if it is gone.

    With `reaped`, add those of its children that ended and were waited for.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])
    return used / _TICK


def _tree_cpu(root: int) -> float:
    """Return the CPU seconds of a process and its children (uvicorn workers), living or
    ended (a worker restarted during a phase still counts)."""
    total = _process_cpu(root, reaped=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == root:
            total += _process_cpu(int(stat.parent.name))
    return total


def _machine_cpu() -> float:
    """Return the CPU seconds every core spent busy since boot (not idle, not iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


class CpuMeter:
    """Measure the cores a phase keeps busy: the server's process tree, the PostgreSQL
    backends it opened (tagged by `application_name`), this load generator, the machine.
    """

    def __init__(self, server_pid: int, database_url: str, application_name: str) -> None:
        self.server_pid = server_pid
        self.database_url = database_url.split("?")[0]
        self.application_name = application_name
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _backends(self) -> float:
        """Return the CPU seconds of the server's backends (NaN if PostgreSQL is full,
        or for SQLite, which runs inside the server and is counted there)."""
        if not self.database_url.startswith("postgres"):
            return float("nan")
        try:
            if self._conn is None:  # one connection per server, kept: max_connections is shared
                self._conn = psycopg.connect(self.database_url, autocommit=True)
            rows = self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                [self.application_name],
            ).fetchall()
        except psycopg.OperationalError:
            return float("nan")
        return sum(_process_cpu(int(str(row[0]))) for row in rows)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def sample(self) -> tuple[float, float, float, float, float]:
        return (
            time.perf_counter(),
            _tree_cpu(self.server_pid),
            self._backends(),
            time.process_time(),
            _machine_cpu(),
        )

    @staticmethod
    def between(
        before: tuple[float, float, float, float, float],
        after: tuple[float, float, float, float, float],
    ) -> Cpu:
        elapsed = after[0] - before[0]
        server, postgres, load, machine = (after[i] - before[i] for i in range(1, 5))
        return Cpu(server / elapsed, postgres / elapsed, load / elapsed, machine / elapsed)


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
            _mean_cpu(before, row),
            row.server,
        )
    )


def _mean_cpu(a: Row, b: Row) -> Cpu | None:
    """Return the cores busy over two phases (each weighted by its length)."""
    if a.cpu is None or b.cpu is None:
        return a.cpu or b.cpu
    total = a.seconds + b.seconds
    parts = [
        (getattr(a.cpu, f) * a.seconds + getattr(b.cpu, f) * b.seconds) / total
        for f in ("server", "postgres", "load", "machine")
    ]
    return Cpu(*parts)


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

    def __init__(
        self, database_url: str, data_dir: Path, *, group_commit: bool, workers: int = 1
    ) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.log_file = self.log.open("wb")
        # libpq tags every connection of the server, so its PostgreSQL backends are known
        self.application_name = f"bench-api-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "PGAPPNAME": self.application_name,
            "LEDGER_LOG_FORMAT": "json",
            "LEDGER_API_GROUP_COMMIT": "on" if group_commit else "off",
            # the load generator uses one key per role: measure the server, not the limiter
            "LEDGER_RATE_LIMIT_PER_SECOND": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "serve", "--port", str(self.port),
             "--database-url", database_url, "--data-dir", str(data_dir),
             "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=self.log_file, env=env,
        )  # fmt: skip
        self.cpu = CpuMeter(self.process.pid, database_url, self.application_name)
        self.label = f"{workers} worker{'s' if workers > 1 else ''}"
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
                self.stop()  # never leave a server (and its connections) behind
                raise RuntimeError(f"the API server did not start; its log ends:\n{tail}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """Return the CPU time (user and system) the server process used so far (Linux)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.cpu.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        self.log_file.close()


def http_phase(
    server: ServerProcess, what: str, mode: str, request: Callable[[int], bytes], args: Args
) -> Row:
    http_load(server.port, args.connections, min(1.0, args.seconds / 4), request)  # warm up
    began = server.cpu_seconds()
    before = server.cpu.sample()
    load, elapsed = http_load(server.port, args.connections, args.seconds, request)
    cpu = CpuMeter.between(before, server.cpu.sample())
    used, count = SERVER_CPU.get(what, (0.0, 0))
    SERVER_CPU[what] = (used + server.cpu_seconds() - began, count + len(load.latencies))
    return Row(
        "http",
        what,
        mode,
        len(load.latencies),
        elapsed,
        load.latencies,
        load.errors,
        cpu,
        server.label,
    )


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


def workers_phases(
    url: str, data_dir: Path, write: Callable[[int], bytes], args: Args
) -> list[Row]:
    """`/healthz` and group-commit grants on `serve --workers N`; none if it does not start."""
    try:
        server = ServerProcess(url, data_dir, group_commit=True, workers=args.workers)
    except RuntimeError as error:  # keep the rows measured so far
        print(f"serve --workers {args.workers}: {error}", file=sys.stderr)
        return []
    mode = f"{args.workers} workers"
    try:
        healthz = get(lambda i: "/healthz", None)
        return [
            http_phase(server, "GET /healthz", mode, healthz, args),
            http_phase(server, "POST grants", f"group commit, {mode}", write, args),
        ]
    finally:
        server.stop()


# ----------------------------------------------------------------------- main


@dataclass(frozen=True)
class Args:
    seconds: float
    connections: int
    database_url: str
    rounds: int
    history: int
    reads_only: bool = False
    workers: int = 1

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
            if args.workers > 1 and not args.reads_only:
                rows += workers_phases(url, data_dir, write, args)
        finally:
            services.close()
            if not args.sqlite:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return rows


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(rows: list[Row]) -> str:
    """Render the rows: rates, latencies, the cores each part kept busy, and two ratios.

    `vs 1 tx/write`: group commit against one transaction per write, same area.
    `vs /healthz`: a route against `GET /healthz` on the same server (same workers).
    CPU columns (HTTP rows): cores busy in the server's processes, in the PostgreSQL
    backends they opened, in this load generator, and on the whole machine (other
    sessions included); `srv ms/req` is server CPU per answered request.
    """
    per_write = {r.area: r.rate for r in rows if r.mode == "1 tx/write"}
    healthz = {r.server: r.rate for r in rows if r.what == "GET /healthz"}
    header = [
        "area", "what", "mode", "requests", "req/s", "p50 ms", "p99 ms", "errors",
        "vs 1 tx/write", "vs /healthz", "server", "pg", "load", "machine", "srv ms/req",
    ]  # fmt: skip
    body = []
    for r in rows:
        vs_single = _ratio(r.rate, per_write.get(r.area)) if "group commit" in r.mode else "-"
        vs_healthz = (
            _ratio(r.rate, healthz.get(r.server))
            if r.area == "http" and r.what != "GET /healthz"
            else "-"
        )
        cpu = (
            [
                f"{r.cpu.server:.2f}",
                f"{r.cpu.postgres:.2f}",
                f"{r.cpu.load:.2f}",
                f"{r.cpu.machine:.2f}",
                f"{1000 * r.cpu.server / r.rate:.2f}" if r.rate else "-",
            ]
            if r.cpu
            else ["-"] * 5
        )
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
                vs_single,
                vs_healthz,
                *cpu,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in body:
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """Return issue 14's HTTP ratios of this run (one server, one worker) beside targets."""

    def rate(what: str, mode: str) -> float:
        return next((r.rate for r in rows if r.what == what and r.mode == mode), 0.0)

    healthz, check = rate("GET /healthz", "-"), rate("GET /v1/check", "-")
    group, single = rate("POST grants", "group commit"), rate("POST grants", "1 tx/write")
    return (
        f"issue 14 ratios: check / healthz {_ratio(check, healthz)} (target >= 0.8x); "
        f"grants group commit / 1 tx/write {_ratio(group, single)} (>= 5x); "
        f"grants / healthz {_ratio(group, healthz)} (>= 0.5x)"
    )


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
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also measure /healthz and group-commit grants on `serve --workers N` "
        "(default 1: only the one-process server)",
    )
    ns = parser.parse_args(argv)
    args = Args(
        ns.seconds,
        ns.connections,
        ns.database_url,
        ns.rounds,
        ns.history,
        ns.reads_only,
        ns.workers,
    )
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
    print(summary(rows))
    for row in rows:
        if row.errors:
            print(f"{row.what} ({row.mode}): {row.errors} answers were not 2xx", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
