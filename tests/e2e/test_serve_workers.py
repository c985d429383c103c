"""`serve --workers 2`: two API processes on one port, one projector between them.

Every read made after a write's 201, on a new connection (so either process may answer
it), reflects that write; exactly one process holds the projector's lease.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.server_support import start_server

pytestmark = pytest.mark.timeout(300)


def children_of(pid: int) -> list[int]:
    """Return the pids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def lease_sessions(postgres_url: str, pids: list[int]) -> int:
    """Return how many advisory locks the lease sessions of these processes hold."""
    names = [f"consent-ledger-lease:{pid}" for pid in pids]
    with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = ANY(%s)",
            [names],
        ).fetchone()
    return int(row[0]) if row else 0


def test_two_api_processes_share_one_port_and_every_read_reflects_the_write_before_it(
    postgres_url: str, tmp_path: Path
) -> None:
    # Each API process imports and bootstraps on its own: on a loaded machine that is slow.
    server = start_server(
        postgres_url, tmp_path / "data", serve_args=["--workers", "2"], startup_seconds=150
    )
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        processes: list[int] = []
        for _ in range(200):
            processes = children_of(server.process.pid)
            if len(processes) >= 2 and lease_sessions(postgres_url, processes) == 1:
                break
            httpx.get(f"{server.url}/readyz", timeout=5)
        assert len(processes) >= 2, "serve --workers 2 started fewer than two API processes"
        for n in range(20):
            verb = "grants" if n % 2 == 0 else "revocations"
            written = httpx.post(
                f"{server.url}/v1/subjects/artist-{n % 3}/{verb}",
                json={"purpose": "ai-training", "party": "acme"},
                headers=headers,
                timeout=10,
            )
            assert written.status_code == 201, written.text
            answer = httpx.get(
                f"{server.url}/v1/check",
                params={"subject": f"artist-{n % 3}", "purpose": "ai-training", "party": "acme"},
                headers=headers,
                timeout=10,
            ).json()
            assert answer["allowed"] is (n % 2 == 0), (n, answer)
            assert answer["position"] >= written.json()["position"]
        assert lease_sessions(postgres_url, processes) == 1, "a duty runs in more than one process"
    finally:
        assert server.stop() == 0
