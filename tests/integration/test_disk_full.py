"""A SQLite ledger whose disk fills up: a clear error, nothing corrupted, nothing lost.

The test mounts a small tmpfs of its own (root only; CI runs as root), fills it with
writes until the ledger refuses, frees space and checks that every acknowledged write is
there, the audit passes and writing works again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import ErrorKind, LedgerError
from projections.audit import audit_ledger
from services.bootstrap import bootstrap
from services.settings import Settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_refuses_writes_clearly_and_corrupts_nothing(small_disk: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (512 * 1024))
    settings = Settings(database_url=f"sqlite:///{small_disk / 'l.db'}", data_dir=small_disk / "d")
    services = bootstrap(settings)
    acknowledged = []
    try:
        for n in range(10_000):
            try:
                receipt = services.ledger.grant(
                    f"artist-{n % 40}", "ai-training", evidence={"note": "x" * 1900}
                )
            except LedgerError as error:
                refusal = error
                break
            acknowledged.append(receipt.event_id)
        else:
            pytest.fail("the 3 MiB disk never filled up")
        assert refusal.kind is ErrorKind.UNAVAILABLE
        assert "disk is full" in refusal.detail
        assert acknowledged, "the disk was full before the first write"
    finally:
        services.close()

    filler.unlink()
    services = bootstrap(settings)
    try:
        stored = {
            item.entry.event.event_id
            for n in range(40)
            for item in services.ledger.history(f"artist-{n}")
        }
        assert stored == set(acknowledged), "the ledger lost or invented a write"
        services.log.catch_up()
        services.log.head_checkpoint()
        assert audit_ledger(services.log).ok
        services.ledger.grant("artist-after", "ai-training")
    finally:
        services.close()
