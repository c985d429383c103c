"""The relay tells consent.dataset-impacts.v1 when a committed event denies a dataset's item."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.snapshot import SnapshotQuestion
from projections.snapshots.writer import create_snapshot
from services.bootstrap import Services, bootstrap
from services.kafka.relay import topic_names
from services.kafka.wire import SCHEMA_DATASET_IMPACT
from services.settings import Settings
from tests.integration.relay_support import (
    fast_relay,
    positions_at_least,
    read_topic,
    with_kafka,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def wired(settings: Settings, kafka_bootstrap: str) -> Iterator[Services]:
    services = bootstrap(with_kafka(settings, kafka_bootstrap, "impacts"))
    yield services
    services.close()


def test_each_item_turned_denied_is_published_once_keyed_by_dataset(
    wired: Services, tmp_path: Path
) -> None:
    ledger = wired.ledger
    for subject in ("ann", "bob", "cy"):
        ledger.grant(subject, "ai-generative-training", content_ids=["t1", "t2"])
    asked = ledger.question("-", "ai-generative-training")
    question = SnapshotQuestion(asked.purpose, asked.party, asked.aspect, asked.at, asked.known_at)
    create_snapshot(ledger, wired.log, tmp_path / "snap", question)
    wired.lineage.register(
        "voices-1", tmp_path / "snap", model="gen", items=[("ann", "t1"), ("bob", "t2")]
    )
    first = ledger.revoke("ann", "ai-generative-training", content_ids=["t1"])
    ledger.revoke("ann", "ai-generative-training")  # ann,t1 was denied already: no message
    ledger.revoke("cy", "ai-generative-training")  # cy is in no dataset's items
    last = ledger.erase("bob")
    relay = fast_relay(wired)
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.close()

    names = topic_names(wired.settings)
    messages = read_topic(
        wired.settings.kafka_bootstrap_servers or "",
        names.dataset_impacts,
        until=positions_at_least({last.position}),
    )
    unique = {(m.position, m.seq): m for m in messages}  # at least once: deduplicate
    assert sorted(unique) == [(first.position, 0), (last.position, 0)]
    revoked, erased = unique[(first.position, 0)], unique[(last.position, 0)]
    assert revoked.key == "voices-1"
    assert revoked.headers["event_id"] == str(first.event_id)
    assert revoked.headers["schema"] == SCHEMA_DATASET_IMPACT
    assert revoked.value is not None
    assert {k: revoked.value[k] for k in ("dataset", "model", "subject", "content", "basis")} == {
        "dataset": "voices-1",
        "model": "gen",
        "subject": "ann",
        "content": "t1",
        "basis": "explicit-revocation",
    }
    assert revoked.value["event_id"] == str(first.event_id)
    assert erased.value is not None
    assert (erased.value["subject"], erased.value["content"], erased.value["basis"]) == (
        "bob",
        "t2",
        "erased",
    )
