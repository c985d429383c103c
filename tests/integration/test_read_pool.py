"""The read models' own PostgreSQL read pool: one round trip per read, and reads that
survive the server dropping its connections (no ping before each read)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from projections.read_models.postgres import read_pool_name
from services.bootstrap import bootstrap
from services.settings import Settings
from tests.conftest import postgres_base_url

pytestmark = pytest.mark.timeout(120)


def test_a_check_after_postgres_dropped_the_read_connections_answers_as_before(
    postgres_url: str, tmp_path: Path
) -> None:
    services = bootstrap(Settings(database_url=postgres_url, data_dir=tmp_path / "data"))
    try:
        services.ledger.publish_terms(
            "2025-05",
            services.ledger.clock.now(),
            [{"purpose": "ai-training", "default": "denied"}],
        )
        services.ledger.grant("artist-1", "ai-training")
        before = services.reader.check("artist-1", "ai-training")
        assert before.allowed
        schema = postgres_url.split("schema=")[1]
        with psycopg.connect(postgres_base_url(), autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [read_pool_name(schema)],
            ).fetchone()
        assert dropped is not None
        assert dropped[0] >= 1
        after = services.reader.check("artist-1", "ai-training")
        assert after == before
    finally:
        services.close()
