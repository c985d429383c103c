"""Permission changes on Kafka follow a work's contributors (BRIEF §2.1), both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.bootstrap import Services, bootstrap
from services.kafka.relay import topic_names
from services.settings import Settings
from tests.integration.relay_support import (
    fast_relay,
    logs_to_this_tests_stderr,  # noqa: F401 (autouse fixture)
    positions_at_least,
    read_topic,
    with_kafka,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def wired(settings: Settings, kafka_bootstrap: str) -> Iterator[Services]:
    services = bootstrap(with_kafka(settings, kafka_bootstrap, "rights"))
    yield services
    services.close()


def test_featured_artist_revocation_emits_the_change_of_the_owners_work(wired: Services) -> None:
    ledger = wired.ledger
    ledger.grant("label", "ai-training", party="aurora-labs")
    ledger.grant("singer", "ai-training", party="aurora-labs", aspect="voice")
    registered = ledger.register_content(
        "t1", "label", [{"subject": "singer", "aspects": ["voice"]}]
    )
    revoked = ledger.revoke("singer", "ai-training", party="aurora-labs", aspect="voice")
    relay = fast_relay(wired)
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.close()
    names = topic_names(wired.settings)
    changes = read_topic(
        wired.settings.kafka_bootstrap_servers or "",
        names.permission_changes,
        until=positions_at_least({revoked.position}),
    )
    owner = [
        (m.position, m.value["scope"], m.value["allowed"], m.value["basis"])
        for m in changes
        if m.value is not None and m.key == "label"
    ]
    # The grant itself, then the revocation of the singer flipping the owner's work.
    assert (revoked.position, "content:t1", False, "contributor-denied") in owner
    assert all(position != registered.position for position, *_ in owner)
    assert wired.ledger.check(
        "label", "ai-training", party="aurora-labs", content="t1"
    ).basis.value == ("contributor-denied")
