"""Kafka fixtures shared by the test session; tests/conftest.py imports them by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka_broker import broker_for_tests


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Yield the bootstrap servers of one Kafka broker shared by the whole session.

    `$KAFKA_BOOTSTRAP_SERVERS` if set, else Kafka in Docker if an engine answers, else
    a local Tansu broker (see `tests.support.kafka_broker.broker_for_tests`). Tests share it,
    so each should use its own topic names and group ids.
    """
    with broker_for_tests() as bootstrap_servers:
        yield bootstrap_servers
