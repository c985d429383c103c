"""Training-pipeline routes: consent snapshots, their files, datasets and impacts.

Snapshots are written under the data directory (`<LEDGER_DATA_DIR>/snapshots/<id>/`)
and downloadable file by file. The `data` role (and `admin`) creates snapshots and
registers datasets; every reading role (`reader`, `auditor`, `data`, `admin`) reads them.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path as FsPath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ledger.errors import NotFoundError
from ledger.snapshot import DATA_FILE, MANIFEST_FILE, SnapshotQuestion
from ledger.vocabulary import ALL_ASPECTS, PLATFORM
from projections.snapshots.writer import create_snapshot
from services.bootstrap import Services
from services.http.auth import Access, Authenticator
from services.http.problems import problem_responses
from services.http.routing import JsonResponse, LedgerRoute
from services.http.schemas import FilterItem, instant

SNAPSHOT_FILES: Final = (DATA_FILE, MANIFEST_FILE)
_SNAPSHOT_ID: Final = re.compile(r"^[0-9a-f]{64}$")
DATASET_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class SnapshotRequest(BaseModel):
    """Ask for a snapshot of one question: purpose, party, aspect, at, known_at."""

    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(description="A purpose of the vocabulary.")
    party: str = PLATFORM
    aspect: str = ALL_ASPECTS
    at: str | None = Field(None, description="Effective instant (ISO 8601 with zone); default now.")
    known_at: str | None = Field(None, description="Ledger instant; default now.")


class DatasetRequest(BaseModel):
    """Register a dataset built from a snapshot of this ledger (`items`: the pairs used)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(json_schema_extra={"pattern": DATASET_PATTERN})
    snapshot_id: str = Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})
    model: str | None = None
    model_version: str | None = None
    items: list[FilterItem] | None = Field(None, max_length=1_000_000)


class UnknownSnapshotError(NotFoundError):
    """A snapshot id or file this ledger does not hold."""

    title = "Unknown snapshot"


def snapshots_router(services: Services, auth: Authenticator) -> APIRouter:
    """Return the snapshot and dataset routes."""
    router = APIRouter(prefix="/v1", tags=["training pipelines"], route_class=LedgerRoute)
    read = [Depends(auth.requires(Access.READ))]
    data = [Depends(auth.requires(Access.DATA))]
    root = services.settings.resolved_data_dir() / "snapshots"
    lineage = services.lineage

    def snapshot_dir(snapshot_id: str) -> FsPath:
        directory = root / snapshot_id
        if not _SNAPSHOT_ID.match(snapshot_id) or not (directory / MANIFEST_FILE).is_file():
            raise UnknownSnapshotError(f"no snapshot {snapshot_id!r} is stored here")
        return directory

    @router.post(
        "/snapshots",
        dependencies=data,
        status_code=201,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 422, 503),
        summary="Write a signed consent snapshot of one question; answers its manifest",
    )
    def create(body: SnapshotRequest) -> Response:
        asked = services.ledger.question(
            "-",
            body.purpose,
            body.party,
            None,
            body.aspect,
            instant(body.at, field="at"),
            instant(body.known_at, field="known_at"),
        )
        question = SnapshotQuestion(
            asked.purpose, asked.party, asked.aspect, asked.at, asked.known_at
        )
        root.mkdir(parents=True, exist_ok=True)
        temp = root / f"new-{uuid.uuid4().hex}"
        manifest = create_snapshot(services.ledger, services.log, temp, question)
        target = root / str(manifest["snapshot_id"])
        if target.exists():  # the same content twice: the same id, keep the first
            shutil.rmtree(temp)
        else:
            temp.rename(target)
        return JsonResponse(manifest, status_code=201)

    @router.get(
        "/snapshots/{snapshot_id}/files/{name}",
        dependencies=read,
        responses={
            200: {"content": {"application/octet-stream": {}, "application/json": {}}},
            **problem_responses(401, 403, 404, 503),
        },
        summary="Download a file of a snapshot (decisions.parquet or manifest.json)",
    )
    def download(
        snapshot_id: Annotated[str, Path(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})],
        name: Annotated[str, Path(json_schema_extra={"enum": list(SNAPSHOT_FILES)})],
    ) -> Response:
        directory = snapshot_dir(snapshot_id)
        if name not in SNAPSHOT_FILES:
            raise UnknownSnapshotError(
                f"a snapshot holds {', '.join(SNAPSHOT_FILES)}, not {name!r}"
            )
        media = "application/json" if name == MANIFEST_FILE else "application/vnd.apache.parquet"
        return FileResponse(directory / name, media_type=media, filename=name)

    @router.post(
        "/datasets",
        dependencies=data,
        status_code=201,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 409, 422, 503),
        summary="Register a training dataset built from a stored snapshot",
    )
    def register(body: DatasetRequest) -> Response:
        items = (
            [(i["subject"], i["content"]) for i in body.items] if body.items is not None else None
        )
        receipt, dataset = lineage.register(
            body.name,
            snapshot_dir(body.snapshot_id),
            model=body.model,
            model_version=body.model_version,
            items=items,
        )
        return JsonResponse({**receipt.to_json(), "dataset": dataset.to_json()}, status_code=201)

    @router.get(
        "/datasets/{name}",
        dependencies=read,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="A registered dataset: its snapshot, signed tree, model and items digest",
    )
    def dataset(
        name: Annotated[str, Path(json_schema_extra={"pattern": DATASET_PATTERN})],
    ) -> Response:
        return JsonResponse(lineage.dataset(name).to_json())

    @router.get(
        "/datasets/{name}/impacts",
        dependencies=read,
        response_model=dict[str, Any],
        responses=problem_responses(401, 403, 404, 422, 503),
        summary="What the dataset's snapshot allowed that is denied now, and why",
    )
    def impacts(
        name: Annotated[str, Path(json_schema_extra={"pattern": DATASET_PATTERN})],
    ) -> Response:
        return JsonResponse(lineage.impacts(name))

    return router
