"""A snapshot answers exactly what per-pair `check` answers at its `at` and `known_at`.

Random histories are written through the real use cases with a controlled clock, a
snapshot is taken of a random question, and every candidate pair (named content,
unnamed content, catalogue, a subject the ledger never saw) is filtered by the
vectorised snapshot filter and asked of `check` one by one: the allowed sets must be
identical, on SQLite and on PostgreSQL. Each row of the snapshot must also be the
`check` answer of its own pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.snapshot import SnapshotQuestion
from projections.snapshots.filter import SnapshotFilter
from projections.snapshots.verify import load_table, open_snapshot, read_rows
from projections.snapshots.writer import create_snapshot
from services.bootstrap import Services
from services.settings import Settings
from tests.integration.projection_histories import (
    ASKED_CONTENTS,
    ASKED_PARTIES,
    PURPOSES,
    ManualClock,
    clocked_services,
    histories,
    instants_for,
    play,
)

EXAMPLES = {"sqlite": 40, "postgres": 12}
_examples = itertools.count()


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Services, ManualClock]]:
    yield from clocked_services(settings)


def test_snapshot_filter_allows_exactly_what_check_allows(
    clocked: tuple[Services, ManualClock], tmp_path: Path
) -> None:
    services, clock = clocked
    dialect = "sqlite" if services.settings.database_url.startswith("sqlite") else "postgres"

    @settings(
        max_examples=EXAMPLES[dialect],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(history=histories(), data=st.data())
    def example(history: list[tuple[object, ...]], data: st.DataObject) -> None:
        n = next(_examples)
        played = play(services, clock, history, prefix=f"s{n}-")
        at_choices, known_choices = instants_for(played)
        asked = services.ledger.question(
            "-",
            data.draw(st.sampled_from(PURPOSES)),
            data.draw(st.sampled_from(ASKED_PARTIES)),
            None,
            data.draw(st.sampled_from(("all", "voice", "music"))),
            data.draw(at_choices),
            data.draw(known_choices),
        )
        question = SnapshotQuestion(
            asked.purpose, asked.party, asked.aspect, asked.at, asked.known_at
        )
        directory = tmp_path / f"snapshot-{n}"
        create_snapshot(services.ledger, services.log, directory, question)
        open_snapshot(directory)
        snapshot = SnapshotFilter(load_table(directory))
        pairs = [(s, c) for s in [*played.subjects, f"s{n}-nobody"] for c in ASKED_CONTENTS]

        def check(subject: str, content: str | None) -> bool:
            return services.reader.check(
                subject,
                asked.purpose.name,
                party=asked.party,
                content=content,
                aspect=asked.aspect,
                at=asked.at,
                known_at=asked.known_at,
            ).allowed

        mask = snapshot.allowed(
            pa.array([s for s, _ in pairs], pa.string()),
            pa.array([c for _, c in pairs], pa.string()),
        ).to_pylist()
        assert mask == [check(s, c) for s, c in pairs]
        named = [(s, c) for s, c in pairs if c is not None]
        assert list(snapshot.filter_pairs(named)) == [p for p in named if check(*p)]
        for row in read_rows(directory):
            if row.subject in played.subjects:
                assert row.allowed == check(row.subject, row.content), row

    example()
