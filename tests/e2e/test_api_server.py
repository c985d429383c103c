"""`consent-ledger serve` end to end: a real uvicorn process, real keys, real requests."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_support import start_server

pytestmark = pytest.mark.timeout(180)


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_serve_prints_its_first_admin_key_and_serves_the_ledger(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(database_url, data_dir)
    try:
        assert server.admin_key is not None, server.banner
        assert server.banner[-1].endswith(f"API docs at {server.url}/docs")
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/docs").status_code == 200
            assert client.get("/openapi.json").json()["info"]["title"] == "Consent Ledger"
            assert client.get("/v1/check").status_code == 401

            made = cli(
                "keys", "create", "web-front", "--role", "writer",
                "--database-url", database_url, "--data-dir", str(data_dir),
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            writer_key = made.stdout.strip().splitlines()[-1]
            writer = {"Authorization": f"Bearer {writer_key}", "Idempotency-Key": "e2e-1"}
            grant = {"purpose": "ai-generative-training", "aspect": "voice"}
            receipt = client.post("/v1/subjects/artist-e2e/grants", json=grant, headers=writer)
            assert receipt.status_code == 201, receipt.text
            replay = client.post("/v1/subjects/artist-e2e/grants", json=grant, headers=writer)
            assert replay.json() == receipt.json()

            check = client.get(
                "/v1/check",
                params={
                    "subject": "artist-e2e",
                    "purpose": "ai-generative-training",
                    "aspect": "voice",
                    "min_position": receipt.json()["position"],
                },
                headers=admin,
            )
            assert check.status_code == 200
            assert check.json()["allowed"] is True
            assert check.json()["event_ids"] == [receipt.json()["event_id"]]
            assert check.headers["X-Request-ID"]
            forbidden = client.get(
                "/v1/subjects/artist-e2e/history",
                headers={"Authorization": writer["Authorization"]},
            )
            assert forbidden.status_code == 403
    finally:
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -SIGTERM is clean.
        assert server.stop() in (0, -signal.SIGTERM)

    again = start_server(database_url, data_dir)
    try:
        assert again.admin_key is None, "a ledger with keys gets no new admin key"
    finally:
        again.stop()
