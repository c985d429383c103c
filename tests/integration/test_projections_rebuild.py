"""`project --rebuild` fills shadow tables and swaps them in: readers never see a gap.

Readers ask the read models directly (no replay fallback) from another thread for the
whole rebuild, on SQLite and PostgreSQL. Every answer must equal the one given before
the rebuild, and every table must keep all its rows, whichever side of the swap the
read lands on.
"""

from __future__ import annotations

import threading

from ledger.decisions import Decision
from projections.runner import Projector
from services.bootstrap import Services
from tests.integration.projection_histories import write_history

PURPOSES = ("ai-training", "ai-generative-training")
SUBJECTS = 60


def answers(services: Services, *, tips: bool) -> list[tuple[bool, str]]:
    """Read every subject's answers straight from the read models (never the replay)."""
    reader, ledger = services.reader, services.ledger
    found = []
    for n in range(SUBJECTS):
        for purpose in PURPOSES:
            question = ledger.question(f"artist-{n}", purpose, "platform", None, "all", None, None)
            decision: Decision = reader.answer(question, known_at_given=False, tips=tips)
            found.append((decision.allowed, str(decision.basis)))
    return found


def test_readers_see_every_answer_throughout_a_rebuild(services: Services) -> None:
    write_history(services, SUBJECTS)
    head = services.projector.catch_up()
    view = services.projector.view
    want_tips, want_timeline = answers(services, tips=True), answers(services, tips=False)
    want_counts = {table: view.count(table) for table in ("perm_current", "perm_facts")}
    done = threading.Event()
    reads: list[int] = []
    failures: list[str] = []

    def read_continuously() -> None:
        while not done.is_set():
            try:
                counts = {table: view.count(table) for table in want_counts}
                if counts != want_counts:
                    failures.append(f"row counts {counts}, want {want_counts}")
                if answers(services, tips=len(reads) % 2 == 0) != (
                    want_tips if len(reads) % 2 == 0 else want_timeline
                ):
                    failures.append(f"read {len(reads)} answered differently")
                if view.position() < head:
                    failures.append(f"position {view.position()}, want >= {head}")
            except Exception as error:  # a reader must never fail, whatever it hits
                failures.append(f"{type(error).__name__}: {error}")
            reads.append(1)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        assert Projector(services.ledger, services.projector.model, batch_size=10).rebuild() == head
    finally:
        done.set()
        reader.join(60)
    assert failures == []
    assert reads, "the reader thread read nothing"
    assert answers(services, tips=True) == want_tips
    assert {table: view.count(table) for table in want_counts} == want_counts


def test_a_rebuild_takes_in_writes_projected_while_it_ran(services: Services) -> None:
    write_history(services, SUBJECTS)
    services.projector.catch_up()
    incremental = Projector(services.ledger, services.projector.model, batch_size=5)
    shadow = services.projector.view.shadow()
    incremental_shadow_position = incremental._catch_up(shadow)  # the rebuild half done
    receipt = services.ledger.grant("late", "ai-training")
    services.projector.catch_up()  # the live worker moves past the shadow
    assert not services.projector.view.swap_in(shadow)  # refused: it would lose the write
    assert incremental_shadow_position < receipt.position
    assert incremental.rebuild() == receipt.position
    resumed = services.projector.view.dump()
    assert Projector(services.ledger, services.projector.model).rebuild() == receipt.position
    assert services.projector.view.dump() == resumed


def test_a_rebuild_after_an_interrupted_one_starts_from_empty_shadow_tables(
    services: Services,
) -> None:
    write_history(services, SUBJECTS)
    head = services.projector.catch_up()
    before = services.projector.view.dump()
    projector = Projector(services.ledger, services.projector.model, batch_size=7)
    projector._catch_up(services.projector.view.shadow(), target=head // 2)  # then "killed"
    assert projector.rebuild() == head
    assert services.projector.view.dump() == before
    assert projector.rebuild() == head  # and again: the swapped-in tables rebuild too
    assert services.projector.view.dump() == before
