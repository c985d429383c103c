"""Snapshots and datasets over HTTP: roles, manifest, file downloads, registration, impacts."""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import pyarrow.parquet as pq
import pytest

from ledger.snapshot import DATA_FILE, MANIFEST_FILE
from services.api_keys import Role
from services.bootstrap import Services
from tests.integration.api_support import Api, assert_problem, running_api


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with running_api(services) as client:
        yield client


def test_data_role_builds_a_snapshot_and_registers_a_dataset_that_readers_follow(
    api: Api,
) -> None:
    ledger = api.services.ledger
    ledger.grant("ann", "ai-generative-training", content_ids=["t1"])
    ledger.grant("bob", "ai-generative-training")
    answer = api.post("/v1/snapshots", {"purpose": "ai-generative-training"}, role=Role.DATA)
    assert answer.status_code == 201, answer.text
    manifest = answer.json()
    snapshot_id = manifest["snapshot_id"]
    assert manifest["rows"]["total"] == 3
    files = f"/v1/snapshots/{snapshot_id}/files"
    served = api.get(f"{files}/{MANIFEST_FILE}", role=Role.READER)
    assert served.status_code == 200
    assert orjson.loads(served.content) == manifest
    data = api.get(f"{files}/{DATA_FILE}", role=Role.READER)
    assert data.status_code == 200
    rows = pq.read_table(io.BytesIO(data.content)).to_pylist()
    assert {(r["subject"], r["content"], r["allowed"]) for r in rows} == {
        ("ann", None, False),
        ("ann", "t1", True),
        ("bob", None, True),
    }
    body = {
        "name": "voices-1",
        "snapshot_id": snapshot_id,
        "model": "gen",
        "items": [{"subject": "ann", "content": "t1"}, {"subject": "bob", "content": "t7"}],
    }
    registered = api.post("/v1/datasets", body, role=Role.DATA)
    assert registered.status_code == 201, registered.text
    assert registered.json()["dataset"]["items_count"] == 2
    assert set(registered.json()) >= {"event_id", "position", "recorded_at"}
    shown = api.get("/v1/datasets/voices-1", role=Role.READER).json()
    assert shown["snapshot_id"] == snapshot_id
    assert shown["model"] == "gen"
    revoked = ledger.revoke("bob", "ai-generative-training")
    impacts = api.get("/v1/datasets/voices-1/impacts", role=Role.READER).json()
    assert impacts["impacts"] == [
        {
            "subject": "bob",
            "content": "t7",
            "basis": "explicit-revocation",
            "event_id": str(revoked.event_id),
        }
    ]


def test_routes_refuse_roles_without_access_and_unknown_names(api: Api) -> None:
    assert_problem(api.post("/v1/snapshots", {"purpose": "ai-training"}, role=Role.READER), 403)
    assert_problem(api.post("/v1/snapshots", {"purpose": "ai-training"}, role=Role.WRITER), 403)
    assert_problem(api.post("/v1/snapshots", {"purpose": "made-up"}, role=Role.DATA), 422)
    assert api.client.get("/v1/datasets/x").status_code == 401
    assert_problem(api.get("/v1/datasets/nothing", role=Role.READER), 404)
    assert_problem(api.get(f"/v1/snapshots/{'0' * 64}/files/{DATA_FILE}"), 404)
    unknown = {"name": "d", "snapshot_id": "0" * 64}
    assert_problem(api.post("/v1/datasets", unknown, role=Role.DATA), 404)
    manifest = api.post("/v1/snapshots", {"purpose": "ai-training"}, role=Role.ADMIN).json()
    assert_problem(
        api.get(f"/v1/snapshots/{manifest['snapshot_id']}/files/other.txt", role=Role.READER), 404
    )
    denied = {
        "name": "d",
        "snapshot_id": manifest["snapshot_id"],
        "items": [{"subject": "zed", "content": "t1"}],
    }
    assert_problem(api.post("/v1/datasets", denied, role=Role.DATA), 422)
