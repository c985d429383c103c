"""Fuzz the API with schemathesis against its own OpenAPI: no 5xx, answers match the schema.

A real `consent-ledger serve` process per backend; every operation gets generated
requests (valid and invalid) sent with an admin key, so the generator reaches the use
cases and not only the authentication. The default test keeps its examples few (well
under a minute per backend); the `slow` one sends many more on PostgreSQL, as many as
`LEDGER_TEST_FUZZ_POSITIVE` / `LEDGER_TEST_FUZZ_NEGATIVE` ask per operation (default
50 and 15), and prints the count of examples and operations.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok

from tests.conftest import postgres_base_url
from tests.e2e.server_support import Server, start_server

pytestmark = pytest.mark.timeout(300)

POSITIVE = 20  # examples per operation that match the schema
NEGATIVE = 8  # examples per operation that do not
SLOW_POSITIVE = int(os.environ.get("LEDGER_TEST_FUZZ_POSITIVE", "50"))
SLOW_NEGATIVE = int(os.environ.get("LEDGER_TEST_FUZZ_NEGATIVE", "15"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@contextmanager
def serving(backend: str, folder: Path) -> Iterator[Server]:
    """Run `consent-ledger serve` on a fresh ledger of `backend`; drop its schema after."""
    schema = f"t_fuzz_{uuid.uuid4().hex[:10]}"
    base = postgres_base_url().split("?")[0]
    url = f"sqlite:///{folder / 'ledger.db'}" if backend == "sqlite" else f"{base}?schema={schema}"
    server = start_server(url, folder / "data")
    try:
        yield server
    finally:
        server.stop()
        if backend == "postgres":
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with serving(request.param, tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def fuzz(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    statuses: Counter[str],
) -> None:
    """Send `examples` generated requests of one operation; raise on the first failure."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        statuses[f"{operation.label} -> {response.status_code}"] += 1

    run()


def fuzz_every_operation(server: Server, positive: int, negative: int) -> Counter[str]:
    """Fuzz every operation of the server's OpenAPI; assert no failure; return the
    count of answers per `operation -> status`."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), [r for r in results if not isinstance(r, Ok)]
    assert len(operations) >= 15
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, positive),
            (GenerationMode.NEGATIVE, negative),
        ):
            try:
                fuzz(operation, mode, headers, examples, statuses)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameter to break
            except Exception as error:  # collect every operation's failure, then report
                failures.append(f"{operation.label} ({mode.value}): {error}")
    print("\n".join(f"{n:4} {label}" for label, n in sorted(statuses.items())))
    assert not failures, "\n\n".join(failures)
    answered = {label.split(" -> ")[0] for label in statuses if label.endswith(("200", "201"))}
    assert len(answered) >= 10, f"too few operations ever answered 2xx: {sorted(answered)}"
    print(
        f"fuzz: {sum(statuses.values())} examples over {len(operations)} operations, "
        f"{len(answered)} of them answered 2xx, no 5xx"
    )
    return statuses


def test_no_generated_request_makes_the_api_fail_or_break_its_schema(fuzz_server: Server) -> None:
    fuzz_every_operation(fuzz_server, POSITIVE, NEGATIVE)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(1200)
def test_thousands_of_generated_requests_on_postgresql_never_make_the_api_fail(
    tmp_path: Path,
) -> None:
    with serving("postgres", tmp_path) as server:
        statuses = fuzz_every_operation(server, SLOW_POSITIVE, SLOW_NEGATIVE)
    assert sum(statuses.values()) >= 1000
