# long module: one benchmark run end to end: data generation, four measures, the table
"""Benchmark the read models: check, point-in-time, filter and rebuild, beside the replay.

    python -m bench.projections [--subjects 1000000] [--pg-events 100000] [--skip-postgres]
    python -m bench projections

Data: real ledger events (a terms publication, then per subject a terms acceptance and,
for some subjects, content grants, catalogue revocations, expiring open grants and
named-party aspect revocations, with backfilled effective times) appended through a bulk
path: `ConsentLedger.save` in batches of 1000, skipping the use cases' validation, which
is not what is measured. The read models are then built by the real projector
(`Projector.catch_up`), which is the rebuild figure. Every read figure is measured beside
the same questions answered by the replay (`ConsentLedger.check`) in the same run.

SQLite: the ledger grows to 10,000 events, is projected and measured (point-in-time
latency at 10k), then grows to `--subjects` subjects (about 1.33 events each), is caught
up and measured again (the same point-in-time questions, so the ratio shows whether the
lookups stay flat), with current checks, and the batch filter over one pair per subject
(in process and through `consent-ledger filter`). PostgreSQL: `--pg-events` events in a
fresh schema (dropped afterwards): rebuild rate, check and point-in-time latency.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from ledger.events import (
    ConsentGranted,
    ConsentRevoked,
    LedgerEvent,
    TermsAccepted,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)

SAVE_BATCH = 1000
SMALL_EVENTS = 10_000
RECORDED_FROM = datetime(2025, 3, 1, tzinfo=UTC)
RECORDING_STEP = timedelta(milliseconds=10)  # the ledger clock between two bulk events
AT = datetime(2024, 5, 20, tzinfo=UTC)  # the point-in-time questions' effective instant
TERMS = "2024-02"


# ----------------------------------------------------------------------------- data


def subject_events(n: int, recorded: Callable[[], datetime]) -> list[LedgerEvent]:
    """Return subject `n`'s events: an acceptance, and some grants and revocations."""
    subject = f"artist-{n:07d}"
    stream = subject_stream_id(subject)
    events: list[LedgerEvent] = []

    def base(effective: datetime) -> dict[str, Any]:
        return {
            "originator_id": stream,
            "originator_version": len(events) + 1,
            "timestamp": recorded(),
            "event_id": uuid4(),
            "effective_at": effective,
            "subject": subject,
        }

    def scope(purpose: str, party: str, contents: list[str] | None, aspect: str) -> Any:
        return {
            "purpose": purpose,
            "party": party,
            "content_ids": contents,
            "aspect": aspect,
            "evidence": None,
        }

    track = [f"track-{n}"]
    accepted = datetime(2024, 2, 20, tzinfo=UTC) + timedelta(days=n % 30)
    events.append(TermsAccepted(**base(accepted), version=TERMS, evidence=None))
    if n % 8 == 0:
        effective = datetime(2024, 6, 1, tzinfo=UTC)
        events.append(
            ConsentGranted(
                **base(effective),
                **scope("ai-training", "platform", track, "all"),
                expires_at=None,
            )
        )
    if n % 8 == 4:
        effective = datetime(2024, 5, 15, tzinfo=UTC)
        events.append(
            ConsentRevoked(**base(effective), **scope("ai-training", "platform", None, "all"),
                           reason=None)
        )  # fmt: skip
    if n % 16 == 0:
        effective = datetime(2025, 1, 1, tzinfo=UTC)
        events.append(
            ConsentGranted(
                **base(effective),
                **scope("ai-generative-training", "*", None, "all"),
                expires_at=datetime(2025, 7, 1, tzinfo=UTC),
            )
        )
    if n % 64 == 0:
        effective = datetime(2024, 9, 1, tzinfo=UTC)
        events.append(
            ConsentRevoked(**base(effective), **scope("ai-training", "acme", track, "voice"),
                           reason=None)
        )  # fmt: skip
    return events


class Generator:
    """Append subjects' events in bulk with a ledger clock that moves 10 ms per event.

    The bulk path maps events with the ledger's own mapper and inserts them with its own
    recorder (what `Application.save` does, minus its per-event bookkeeping).
    """

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.events = 0
        self.subjects = 0

    def save(self, events: list[LedgerEvent]) -> None:
        to_stored = self.ledger.mapper.to_stored_event
        self.ledger.recorder.insert_events([to_stored(event) for event in events])

    def recorded(self) -> datetime:
        self.events += 1
        return RECORDED_FROM + self.events * RECORDING_STEP

    def publish_terms(self) -> None:
        when = self.recorded()
        self.ledger.save(
            TermsPublished(
                originator_id=terms_stream_id(TERMS),
                originator_version=1,
                timestamp=when,
                event_id=uuid4(),
                effective_at=when,
                version=TERMS,
                effective_from=datetime(2024, 2, 1, tzinfo=UTC),
                clauses=[
                    {"purpose": "ai-training", "default": "granted"},
                    {"purpose": "data-mining", "default": "denied"},
                ],
                document_sha256=None,
            )
        )

    def grow(self, *, until_events: int | None = None, until_subjects: int | None = None) -> None:
        """Append whole subjects until the ledger holds `until_events` or `until_subjects`."""
        batch: list[LedgerEvent] = []
        while (until_events is None or self.events < until_events) and (
            until_subjects is None or self.subjects < until_subjects
        ):
            batch.extend(subject_events(self.subjects, self.recorded))
            self.subjects += 1
            if len(batch) >= SAVE_BATCH:
                self.save(batch)
                batch = []
        if batch:
            self.save(batch)


# ------------------------------------------------------------------------- measuring

READ_MODELS = "read models"
REPLAY = "replay (`check`)"
REPLAY_TERMS_ONCE = "replay, terms once"
# How many questions each answerer is timed on: the replay through `check` costs up to
# tens of milliseconds per question on a million events (see the docs), so fewer.
SAMPLES = {READ_MODELS: 2000, REPLAY: 30, REPLAY_TERMS_ONCE: 500}

Question = tuple[str, str]  # (subject, content)
Ask = Callable[[Question], Any]


@dataclass
class Timing:
    """Latencies of one kind of question, in microseconds."""

    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(questions: list[Question], ask: Ask) -> Timing:
    """Ask each question once (after a short warm-up); return the latencies."""
    for question in questions[:20]:
        ask(question)
    samples = []
    for question in questions:
        start = time.perf_counter_ns()
        ask(question)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return Timing(samples)


def sample(subjects: int, count: int, seed: int) -> list[Question]:
    """Return `count` questions about random subjects, each about the subject's track."""
    rng = random.Random(seed)
    return [(f"artist-{n:07d}", f"track-{n}") for n in (rng.randrange(subjects) for _ in
                                                            range(count))]  # fmt: skip


def askers(
    services: Any, *, party: str = "platform", aspect: str = "all",
    at: datetime | None = None, known_at: datetime | None = None,
) -> dict[str, Ask]:  # fmt: skip
    """Return the three ways to answer `(subject, content)` for ai-training.

    `replay, terms once` is the replay without `ConsentLedger.terms_catalog`, which scans
    the event table from the last terms publication on every call: `decide` over the
    subject's events, with the terms catalogue read once and the position looked up.
    """
    from ledger.decisions import decide

    ledger = services.ledger
    terms = ledger.terms_catalog()
    words = {"party": party, "aspect": aspect, "at": at, "known_at": known_at}

    def terms_once(q: Question) -> Any:
        question = ledger.question(q[0], "ai-training", party, q[1], aspect, at, known_at)
        position = ledger.ledger_position(known_at)
        return decide(ledger.subject_entries(q[0]), terms, question, position)

    return {
        READ_MODELS: lambda q: services.reader.check(q[0], "ai-training", content=q[1], **words),
        REPLAY: lambda q: ledger.check(q[0], "ai-training", content=q[1], **words),
        REPLAY_TERMS_ONCE: terms_once,
    }


def agree(questions: list[Question], answer: dict[str, Ask]) -> None:
    """Check that the three answerers agree (on up to 100 questions)."""
    for question in questions[:100]:
        answers = {name: ask(question) for name, ask in answer.items()}
        if len(set(answers.values())) != 1:
            raise AssertionError(f"answers differ on {question}: {answers}")


@dataclass
class Row:
    """One line of the printed table."""

    measure: str
    data: str
    read_models: str
    replay: str
    replay_terms_once: str
    ratio: str


HEADER = Row("measure", "data", READ_MODELS, REPLAY, REPLAY_TERMS_ONCE,
             "replay / read models")  # fmt: skip


def latency(name: str, data: str, questions: list[Question], answer: dict[str, Ask]) -> list[Row]:
    """Time the three answerers on `questions`; return p50 and p99 rows."""
    agree(questions, answer)
    timings = {who: timed(questions[: SAMPLES[who]], ask) for who, ask in answer.items()}
    fast, slow, inherent = timings[READ_MODELS], timings[REPLAY], timings[REPLAY_TERMS_ONCE]
    return [
        Row(f"{name} p50", data, f"{fast.p50:,.0f} µs", f"{slow.p50:,.0f} µs",
            f"{inherent.p50:,.0f} µs",
            f"{slow.p50 / fast.p50:,.0f}x; {inherent.p50 / fast.p50:,.1f}x"),
        Row(f"{name} p99", data, f"{fast.p99:,.0f} µs", f"{slow.p99:,.0f} µs",
            f"{inherent.p99:,.0f} µs",
            f"{slow.p99 / fast.p99:,.0f}x; {inherent.p99 / fast.p99:,.1f}x"),
    ]  # fmt: skip


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n")
    table = [HEADER, *rows]
    fields = list(Row.__dataclass_fields__)
    widths = [max(len(getattr(r, f)) for r in table) for f in fields]
    for index, row in enumerate(table):
        cells = [getattr(row, f).ljust(w) for f, w in zip(fields, widths, strict=True)]
        print("| " + " | ".join(cells) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def open_services(url: str, data_dir: Path) -> Any:
    from services.bootstrap import bootstrap
    from services.settings import Settings

    return bootstrap(Settings(database_url=url, data_dir=data_dir, log_format="json"))


def catch_up(services: Any) -> tuple[int, float]:
    """Catch the read models up with the projector; return (events, seconds)."""
    before = services.projector.position()
    start = time.perf_counter()
    after = services.projector.catch_up()
    return after - before, time.perf_counter() - start


def log(message: str) -> None:
    print(f"[bench.projections] {message}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- backends


def point_in_time(services: Any, known_at: datetime) -> dict[str, Ask]:
    """Answerers for the point-in-time question: a named party and an aspect (eight keys),
    at an instant in 2024, as known halfway through the first 10,000 events."""
    return askers(services, party="acme", aspect="voice", at=AT, known_at=known_at)


def run_sqlite(subjects: int, cli_filter: bool) -> list[Row]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-projections-"))
    url = f"sqlite:///{workdir / 'ledger.db'}"
    rows: list[Row] = []
    try:
        services = open_services(url, workdir / "data")
        services.projector.index = None  # built and measured on its own (`index_rows`)
        generator = Generator(services.ledger)
        generator.publish_terms()
        generator.grow(until_events=SMALL_EVENTS)
        catch_up(services)
        small = f"SQLite, {generator.events:,} events"
        known_at = RECORDED_FROM + (SMALL_EVENTS // 2) * RECORDING_STEP
        pit = sample(generator.subjects, 2000, seed=1)
        rows += latency("point-in-time check", small, pit, point_in_time(services, known_at))
        log(f"measured at {generator.events:,} events; growing to {subjects:,} subjects")

        start = time.perf_counter()
        generator.grow(until_subjects=subjects)
        log(f"bulk-appended {generator.events:,} events in {time.perf_counter() - start:.0f} s")
        events, seconds = catch_up(services)
        large = f"SQLite, {generator.events:,} events, {subjects:,} subjects"
        log(f"caught up {events:,} events in {seconds:.1f} s")
        rows.insert(0, Row("catch-up (rebuild) rate", large, f"{events / seconds:,.0f} events/s",
                           "-", "-", "-"))  # fmt: skip
        rows += latency("point-in-time check", large, pit, point_in_time(services, known_at))
        small_p50 = float(rows[1].read_models.split()[0].replace(",", ""))
        large_p50 = float(rows[-2].read_models.split()[0].replace(",", ""))
        rows.append(Row("point-in-time p50, large / small", "the same 2,000 questions",
                        f"{large_p50 / small_p50:.2f}x", "-", "-", "-"))  # fmt: skip
        rows += latency(
            "point-in-time check, any subject",
            large,
            sample(subjects, 2000, seed=2),
            point_in_time(services, known_at + timedelta(days=1)),
        )
        current = sample(subjects, 5000, seed=3)
        rows += index_rows(services, large, current)
        services.projector.index = None  # the rows below read the tables, as a CLI does
        ledger, reader = services.ledger, services.reader
        alone = timed(
            current,
            lambda q: reader.answer(
                ledger.question(q[0], "ai-training", content=q[1]), known_at_given=False
            ),
        )
        rows.append(Row("check (now), read-model lookup alone p50", large, f"{alone.p50:,.0f} µs",
                        "-", "-", "no freshness check"))  # fmt: skip
        one_shot = timed(current[:1000], askers(services)[READ_MODELS])
        rows.append(Row("check (now), one-shot reader p50", large, f"{one_shot.p50:,.0f} µs",
                        "-", "-", "catches up to the head first"))  # fmt: skip
        log("measured checks; filtering")
        rows += filter_rows(services, subjects, url, workdir, large, cli_filter)
        services.close()
        log(f"database file {os.path.getsize(workdir / 'ledger.db') / 2**20:,.0f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def cpu_per_call(questions: list[Question], ask: Ask) -> float:
    """Return the mean CPU time of this thread per question, in µs (load-independent:
    the wall-clock percentiles of a shared machine include time the scheduler gave others)."""
    start = time.thread_time_ns()
    for question in questions:
        ask(question)
    return (time.thread_time_ns() - start) / len(questions) / 1000


def index_rows(services: Any, data: str, current: list[Question]) -> list[Row]:
    """Time `check (now)` with the projector running as in the server, first through the
    tables (the previous path: no in-memory index), then through the index, on the same
    questions in the same run; build the index in between and measure its memory."""
    from projections.current_index import CurrentIndex

    projector = services.projector
    projector.index = None  # the previous path: the tables answer
    check = askers(services)[READ_MODELS]
    projector.start_background()  # as in the server: reads do not catch up
    try:
        tables = latency("check (now), tables", data, current, askers(services))
        tables_cpu = cpu_per_call(current, check)
    finally:
        projector.stop()
    # As a server starts: a fresh index folds the whole log (timed), then a second fresh
    # one does it again under tracemalloc, which counts the bytes it keeps.
    projector.index = CurrentIndex()
    start = time.perf_counter()
    projector.tail_index()
    seconds = time.perf_counter() - start
    position = projector.index.position
    projector.index = index = CurrentIndex()
    gc.collect()
    tracemalloc.start()
    projector.tail_index()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    subjects = index.subjects()
    log(f"index built to position {position:,} in {seconds:.1f} s, {grown / 2**20:,.0f} MiB")
    projector.start_background()
    try:
        indexed = latency("check (now), index", data, current, askers(services))
        index_cpu = cpu_per_call(current, check)
    finally:
        projector.stop()
    rows = [
        Row("check index build (fold of the log)", data,
            f"{position / seconds:,.0f} events/s ({seconds:.1f} s)", "-", "-", "-"),
        Row("check index memory (tracemalloc)", data,
            f"{grown / subjects:,.0f} B/subject ({grown / 2**20:,.0f} MiB)", "-", "-",
            f"{grown / subjects * 1e6 / 2**20:,.0f} MiB per million subjects"),
    ]  # fmt: skip
    rows.append(Row("check (now), CPU time per check (this thread)", data,
                    f"index {index_cpu:,.1f} µs; tables {tables_cpu:,.1f} µs", "-", "-",
                    f"{tables_cpu / index_cpu:.1f}x less CPU"))  # fmt: skip
    for old, new in zip(tables, indexed, strict=True):
        rows += [old, new]
        fast = float(new.read_models.split()[0].replace(",", ""))
        slow = float(old.read_models.split()[0].replace(",", ""))
        rows.append(Row(f"{new.measure.replace(', index', '')}: tables / index",
                        "the same questions, one run", f"{slow / fast:.1f}x", "-", "-",
                        "target: index p99 <= 20 µs"))  # fmt: skip
    return rows


def pairs(subjects: int) -> Iterator[tuple[str, str]]:
    """Yield one (subject, content) pair per subject, in a scrambled order."""
    step = 7_919  # a prime: n * step mod subjects visits every subject once
    for k in range(subjects):
        n = (k * step) % subjects
        yield f"artist-{n:07d}", f"track-{n}"


def filter_rows(services: Any, subjects: int, url: str, workdir: Path, data: str,
                cli_filter: bool) -> list[Row]:  # fmt: skip
    start = time.perf_counter()
    allowed = sum(1 for _ in services.reader.filter("ai-training", pairs(subjects)))
    seconds = time.perf_counter() - start
    rate = subjects / seconds
    probe = list(itertools.islice(pairs(subjects), SAMPLES[REPLAY_TERMS_ONCE]))
    answer = askers(services)
    replay_rates = {}
    for who in (REPLAY, REPLAY_TERMS_ONCE):
        start = time.perf_counter()
        replayed = [p for p in probe[: SAMPLES[who]] if answer[who](p).allowed]
        replay_rates[who] = SAMPLES[who] / (time.perf_counter() - start)
        if replayed != list(services.reader.filter("ai-training", probe[: SAMPLES[who]])):
            raise AssertionError("filter and replay disagree on the probe pairs")
    slow, inherent = replay_rates[REPLAY], replay_rates[REPLAY_TERMS_ONCE]
    rows = [
        Row(f"filter {subjects:,} pairs, in process", data,
            f"{rate:,.0f} pairs/s ({seconds:.0f} s; {allowed:,} allowed)",
            f"{slow:,.0f} pairs/s ({subjects / slow / 3600:,.1f} h)",
            f"{inherent:,.0f} pairs/s ({subjects / inherent / 60:,.0f} min)",
            f"{rate / slow:,.0f}x; {rate / inherent:,.0f}x"),
    ]  # fmt: skip
    if cli_filter:
        lines = workdir / "pairs.csv"
        with lines.open("w") as out:
            out.write("subject,content\n")
            out.writelines(f"{s},{c}\n" for s, c in pairs(subjects))
        env = dict(os.environ, LEDGER_DATABASE_URL=url, LEDGER_DATA_DIR=str(workdir / "data"))
        start = time.perf_counter()
        with lines.open() as stdin:
            done = subprocess.run(
                [sys.executable, "-m", "services.cli.main", "filter", "ai-training"],
                stdin=stdin, stdout=subprocess.PIPE, env=env, check=True,
            )  # fmt: skip
        seconds = time.perf_counter() - start
        printed = done.stdout.count(b"\n")
        if printed != allowed:
            raise AssertionError(f"the CLI printed {printed} lines, the reader allowed {allowed}")
        cli_rate = subjects / seconds
        rows.append(
            Row(f"`consent-ledger filter`, {subjects:,} lines", data,
                f"{cli_rate:,.0f} lines/s ({seconds:.0f} s, whole process)",
                "-", "-", f"{cli_rate / slow:,.0f}x; {cli_rate / inherent:,.0f}x")
        )  # fmt: skip
    return rows


def run_postgres(events: int, base_url: str) -> list[Row]:
    import psycopg

    schema = f"bench_projections_{uuid.uuid4().hex[:8]}"
    url = f"{base_url.split('?')[0]}?schema={schema}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-projections-pg-"))
    rows: list[Row] = []
    try:
        services = open_services(url, workdir / "data")
        generator = Generator(services.ledger)
        generator.publish_terms()
        generator.grow(until_events=events)
        caught, seconds = catch_up(services)
        data = f"PostgreSQL, {generator.events:,} events, {generator.subjects:,} subjects"
        log(f"caught up {caught:,} events on PostgreSQL in {seconds:.1f} s")
        rows.append(Row("catch-up (rebuild) rate", data, f"{caught / seconds:,.0f} events/s",
                        "-", "-", "-"))  # fmt: skip
        known_at = RECORDED_FROM + (generator.events // 2) * RECORDING_STEP
        questions = sample(generator.subjects, 2000, seed=4)
        services.projector.start_background()
        try:
            rows += latency("check (now)", data, questions, askers(services))
            rows += latency("point-in-time check", data, questions,
                            point_in_time(services, known_at))  # fmt: skip
        finally:
            services.projector.stop()
        services.close()
    finally:
        with psycopg.connect(base_url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def contributor_rows(works: int = 300) -> list[Row]:
    """Time `check (now)` on works with two contributors against plain content (§2.1).

    A fresh SQLite ledger through the use cases: per owner a terms acceptance, a plain
    track and a registered work whose two contributors accepted the same terms (so every
    answer is allowed and both contributors are asked). The issue's bound: at most 3x.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bench-rights-"))
    try:
        services = open_services(f"sqlite:///{workdir / 'ledger.db'}", workdir / "data")
        ledger = services.ledger
        ledger.publish_terms(TERMS, datetime(2024, 2, 1, tzinfo=UTC),
                             [{"purpose": "ai-training", "default": "granted"}])  # fmt: skip
        for n in range(works):
            for subject in (f"owner-{n}", f"singer-{n}", f"writer-{n}"):
                ledger.accept_terms(subject, TERMS)
            ledger.register_content(f"work-{n}", f"owner-{n}", [
                {"subject": f"singer-{n}", "aspects": ["voice"]},
                {"subject": f"writer-{n}", "aspects": ["music"]},
            ])  # fmt: skip
        catch_up(services)
        services.projector.start_background()
        try:
            reader = services.reader
            plain = timed([(f"owner-{n}", f"track-{n}") for n in range(works)] * 5,
                          lambda q: reader.check(q[0], "ai-training", content=q[1]))  # fmt: skip
            work = timed([(f"owner-{n}", f"work-{n}") for n in range(works)] * 5,
                         lambda q: reader.check(q[0], "ai-training", content=q[1]))  # fmt: skip
            assert reader.check("owner-0", "ai-training", content="work-0").allowed
        finally:
            services.projector.stop()
        services.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    data = f"{works} works, SQLite"
    return [
        Row("check (now), plain content p50", data, f"{plain.p50:,.0f} µs", "-", "-", "-"),
        Row("check (now), work with two contributors p50", data, f"{work.p50:,.0f} µs", "-",
            "-", f"{work.p50 / plain.p50:.2f}x plain (bound 3x)"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the read-model benchmarks and print their table; return 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.projections", description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--pg-events", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-cli-filter", action="store_true")
    parser.add_argument(
        "--contributors-only", action="store_true", help="only the §2.1 contributor rows"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEDGER_TEST_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres"),
    )  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.contributors_only:
        print_table("Contributor rule (BRIEF §2.1)", contributor_rows())
        return 0
    rows = run_sqlite(args.subjects, cli_filter=not args.skip_cli_filter)
    rows += contributor_rows()
    if not args.skip_postgres:
        rows += run_postgres(args.pg_events, args.postgres_url)
    print_table(
        f"Read models vs replay ({os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"whole run {time.perf_counter() - started:.0f} s)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
