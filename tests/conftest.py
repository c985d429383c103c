"""Shared fixtures: a fresh ledger on each backend (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.bootstrap import Services, bootstrap
from services.settings import Settings
from tests.kafka_fixtures import kafka_bootstrap  # noqa: F401  (a session fixture)

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_base_url() -> str:
    """Return the PostgreSQL server the tests use (LEDGER_TEST_DATABASE_URL overrides)."""
    return os.environ.get("LEDGER_TEST_DATABASE_URL", DEFAULT_TEST_POSTGRES)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Return the test PostgreSQL URL after checking it answers; fail loudly if not."""
    url = postgres_base_url()
    try:
        with psycopg.connect(url.split("?")[0], connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL for tests is unreachable at {url}: {error}")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """Yield a URL for a fresh, empty schema; drop it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = postgres_server.split("?")[0]
    yield f"{base}?schema={schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return a URL for a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a fresh database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Return settings for a fresh ledger on the parametrised backend."""
    return Settings(database_url=database_url, data_dir=tmp_path / "data", log_format="json")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Yield the wired services of a fresh ledger; close them afterwards."""
    wired = bootstrap(settings)
    yield wired
    wired.close()
