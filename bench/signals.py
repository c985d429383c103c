"""Benchmark the AI-usage signals on PostgreSQL: the per-content route beside /v1/check,
the site-wide files for a million subjects, and the bulk lookup of 10,000 URLs.

    python -m bench.signals [--seconds 5] [--connections 32] [--subjects 1000000]
                            [--database-url URL]

- `route`: `consent-ledger serve` in its own process (bench.api's load generator):
  `GET /v1/check` and `GET /v1/subjects/{s}/content/{c}/ai-signals` on the same server,
  1000 subjects with grants and revocations for `*`. requests/s, p50, p99; the ratio
  is the signals route against /v1/check (target >= 0.8x).
- `lookup`: `POST /v1/ai-signals/lookup` with 10,000 URLs (a quarter of them unknown to
  the template), one request at a time; seconds per request (target <= 1 s).
- `site`: `consent-ledger signals export` in a child process, for 100,000 and then
  `--subjects` subjects, each with a catalogue grant for `*` and one in ten with a
  per-track exception. The read model is seeded directly with SQL (the site-wide files
  read only the read model; how fast the projection builds it is bench.projections');
  seconds (target <= 30 s for 1M) and the child's peak RSS, which stays flat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from bench.api import DEFAULT_DATABASE, ServerProcess, get, http_load, post
from ledger.commands import Command, Grant, Revoke
from services.bootstrap import Services, bootstrap
from services.settings import Settings

TEMPLATE = "https://music.example/{subject}/{content}"
ROUTE_SUBJECTS = 1000
LOOKUP_URLS = 10_000


@dataclass(frozen=True)
class Row:
    """One measured line of the table."""

    area: str
    what: str
    figure: str
    target: str


def seed_route(services: Services) -> None:
    """Grants and revocations for `*` on ROUTE_SUBJECTS subjects (real ledger events)."""
    ledger = services.ledger
    pendings: list[Command] = []
    for n in range(ROUTE_SUBJECTS):
        subject = f"artist-{n}"
        pendings.append(Grant(subject=subject, purpose="ai-training", party="*"))
        if n % 2:
            pendings.append(Grant(subject=subject, purpose="ai-generative-training", party="*"))
        if n % 3 == 0:
            pendings.append(
                Revoke(subject=subject, purpose="ai-training", party="*", content_ids=["t1"])
            )
    for start in range(0, len(pendings), 500):
        ledger.execute_many(pendings[start : start + 500])
    services.projector.catch_up()


def seed_site(conn: psycopg.Connection, first: int, last: int) -> None:
    """Insert read-model tips for subjects first..last: a catalogue grant for `*` each,
    and for one in ten a revocation of one track."""
    conn.execute(
        "INSERT INTO perm_current (subject, purpose, party, scope, aspect, effective_at, "
        "position, kind, event_id, expires_at) SELECT 'artist-' || n, p, '*', '', 'all', 0, "
        "n, 1, lpad(to_hex(n), 32, '0'), NULL FROM generate_series(%s::bigint, %s::bigint) n, "
        "unnest(ARRAY['ai-training', 'ai-generative-training']) p",
        [first, last],
    )
    conn.execute(
        "INSERT INTO perm_current (subject, purpose, party, scope, aspect, effective_at, "
        "position, kind, event_id, expires_at) SELECT 'artist-' || n, 'ai-training', '*', "
        "'track-' || (n %% 7), 'all', 0, n, 2, lpad(to_hex(n), 32, '0'), NULL "
        "FROM generate_series(%s::bigint, %s::bigint) n WHERE n %% 10 = 0",
        [first, last],
    )


def child_export(url: str, data_dir: Path, out: Path) -> dict[str, float]:
    """Run `signals export` in a fresh process; return its seconds and peak RSS (MiB)."""
    script = (
        "import sys, time, resource, orjson\n"
        "from pathlib import Path\n"
        "from services.bootstrap import bootstrap\n"
        "from services.settings import Settings\n"
        f"s = bootstrap(Settings(database_url={url!r}, data_dir=Path({str(data_dir)!r}), "
        f"content_url_template={TEMPLATE!r}))\n"
        "began = time.perf_counter()\n"
        f"site = s.signals.export(Path({str(out)!r}))\n"
        "took = time.perf_counter() - began\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "sizes = {n: f.size for n, f in site.files.items()}\n"
        "print(orjson.dumps({'seconds': took, 'rss': rss, 'sizes': sizes}).decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> list[Row]:
    base = args.database_url.split("?")[0]
    schema = f"bench_signals_{uuid.uuid4().hex[:8]}"
    url = f"{base}?schema={schema}"
    rows: list[Row] = []
    os.environ["LEDGER_CONTENT_URL_TEMPLATE"] = TEMPLATE  # the server inherits it
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        services = bootstrap(Settings(database_url=url, data_dir=data_dir))
        try:
            seed_route(services)
            key = services.api_keys.create("bench-reader", "reader")[1]
            check = get(
                lambda i: (
                    f"/v1/check?subject=artist-{i % ROUTE_SUBJECTS}&purpose=ai-training"
                    "&party=*&content=t1"
                ),
                key,
            )
            page = get(
                lambda i: f"/v1/subjects/artist-{i % ROUTE_SUBJECTS}/content/t1/ai-signals", key
            )
            urls = [
                f"https://music.example/artist-{i % ROUTE_SUBJECTS}/track-{i}"
                if i % 4
                else f"https://elsewhere.example/{i}"
                for i in range(LOOKUP_URLS)
            ]
            lookup = post(lambda i: "/v1/ai-signals/lookup", orjson.dumps({"urls": urls}), key)
            parts = set(args.parts.split(","))
            server = ServerProcess(url, data_dir, group_commit=True)
            try:
                rates = {}
                routes = (("GET /v1/check", check), ("GET ai-signals", page))
                for what, request in routes if "route" in parts else ():
                    http_load(server.port, args.connections, 1.0, request)  # warm up
                    load, took = http_load(server.port, args.connections, args.seconds, request)
                    rates[what] = len(load.latencies) / took
                    p50 = sorted(load.latencies)[len(load.latencies) // 2] * 1000
                    rows.append(
                        Row("route", what, f"{rates[what]:,.0f} req/s, p50 {p50:.1f} ms", "-")
                    )
                if "route" in parts:
                    ratio = rates["GET ai-signals"] / rates["GET /v1/check"]
                    rows.append(Row("route", "ai-signals / check", f"{ratio:.2f}x", ">= 0.8x"))
                if "lookup" in parts:
                    http_load(server.port, 1, 1.0, lookup)  # warm up
                    load, _ = http_load(server.port, 1, args.seconds, lookup)
                    ordered = sorted(load.latencies)
                    rows.append(
                        Row(
                            "lookup",
                            f"POST lookup, {LOOKUP_URLS:,} URLs",
                            f"p50 {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s "
                            f"({len(ordered)} requests)",
                            "<= 1 s",
                        )
                    )
            finally:
                server.stop()
            if "lookup" in parts:
                service = services.signals.configure(None, TEMPLATE)
                runs: list[float] = []
                for _ in range(3):
                    began = time.perf_counter()
                    service.lookup(urls)
                    runs.append(time.perf_counter() - began)
                rows.append(
                    Row(
                        "lookup",
                        f"the same, in process (no HTTP), {LOOKUP_URLS:,} URLs",
                        f"median {sorted(runs)[1]:.2f} s",
                        "-",
                    )
                )
            with psycopg.connect(base, autocommit=True) as conn:
                if "site" not in parts:
                    return rows
                conn.execute(f'SET search_path TO "{schema}"')
                conn.execute("DELETE FROM perm_current")
                done = 0
                for size in (100_000, args.subjects):
                    seed_site(conn, done + 1, size)
                    done = size
                    conn.execute("ANALYZE perm_current")
                    result = child_export(url, data_dir, Path(folder) / f"site-{size}")
                    mib = sum(result["sizes"].values()) / 2**20  # type: ignore[attr-defined]
                    rows.append(
                        Row(
                            "site",
                            f"signals export, {size:,} subjects",
                            f"{result['seconds']:.1f} s, peak RSS {result['rss']:.0f} MiB, "
                            f"{mib:.0f} MiB written",
                            "<= 30 s" if size >= 1_000_000 else "-",
                        )
                    )
        finally:
            services.close()
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return rows


def table(rows: list[Row]) -> str:
    """Render the rows as a Markdown table."""
    header = ["area", "what", "figure", "target"]
    body = [[r.area, r.what, r.figure, r.target] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in body
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each HTTP phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--subjects", type=int, default=1_000_000, help="subjects of the site")
    parser.add_argument(
        "--parts", default="route,lookup,site", help="which of route, lookup, site to run"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL server; a fresh schema is made and dropped",
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        print("bench.signals measures PostgreSQL: pass a postgresql:// URL", file=sys.stderr)
        return 2
    began = time.perf_counter()
    rows = run(args)
    print(
        f"AI-usage signals on PostgreSQL: {args.connections} concurrent clients, "
        f"{args.seconds:g} s per phase, {os.cpu_count()} cores "
        f"({time.perf_counter() - began:.0f} s in all)"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
