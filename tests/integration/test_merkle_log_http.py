"""The /v1/ledger routes answer from the transparency log (BRIEF §4, §5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.checkpoint import verify_signed_checkpoint
from ledger.merkle import verify_consistency, verify_inclusion
from services.api_keys import Role
from services.bootstrap import Services
from services.logs import configure_logging
from tests.integration.api_support import Api, assert_problem, running_api
from tests.integration.log_support import populate


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    """Yield a client of the app on the parametrised backend.

    Logging is configured afresh: an earlier in-process CLI run may have left structlog
    writing to a capture file pytest has closed since.
    """
    configure_logging("json", "info")
    with running_api(services) as client:
        yield client


def test_checkpoint_and_proofs_routes_answer_verifiable_json(api: Api) -> None:
    receipts = populate(api.services.ledger)
    checkpoint = api.get("/v1/ledger/checkpoint", Role.AUDITOR)
    assert checkpoint.status_code == 200, checkpoint.text
    body = checkpoint.json()
    verify_signed_checkpoint(body, api.services.log.key.public_key_b64())
    assert body["tree_size"] == len(receipts)
    assert body["note"].startswith(f"{body['log_id']}\n{body['tree_size']}\n")

    position = receipts[4].position
    inclusion = api.get(f"/v1/ledger/proofs/inclusion?position={position}", Role.AUDITOR).json()
    assert set(inclusion) == {
        "leaf_index",
        "position",
        "tree_size",
        "leaf_hash",
        "audit_path",
        "root_hash",
    }
    assert (inclusion["position"], inclusion["leaf_index"]) == (position, 4)
    assert inclusion["root_hash"] == body["root_hash"]
    verify_inclusion(
        bytes.fromhex(inclusion["leaf_hash"]),
        inclusion["leaf_index"],
        inclusion["tree_size"],
        [bytes.fromhex(h) for h in inclusion["audit_path"]],
        bytes.fromhex(body["root_hash"]),
    )

    consistency = api.get("/v1/ledger/proofs/consistency?first=3&second=10", Role.AUDITOR).json()
    assert set(consistency) == {"first", "second", "proof", "first_root", "second_root"}
    verify_consistency(
        3,
        10,
        [bytes.fromhex(h) for h in consistency["proof"]],
        bytes.fromhex(consistency["first_root"]),
        bytes.fromhex(consistency["second_root"]),
    )
    assert consistency["second_root"] == body["root_hash"]


def test_proof_routes_refuse_the_impossible_and_miss_the_unlogged(api: Api) -> None:
    populate(api.services.ledger, subjects=1)
    assert_problem(api.get("/v1/ledger/proofs/consistency?first=0&second=2", Role.AUDITOR), 422)
    assert_problem(api.get("/v1/ledger/proofs/consistency?first=3&second=2", Role.AUDITOR), 422)
    assert_problem(api.get("/v1/ledger/proofs/consistency?first=1&second=99", Role.AUDITOR), 404)
    assert_problem(api.get("/v1/ledger/proofs/inclusion?position=999", Role.AUDITOR), 404)
    assert_problem(api.get("/v1/ledger/proofs/inclusion?position=3&tree_size=2", Role.AUDITOR), 422)
