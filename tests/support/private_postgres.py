"""A throwaway PostgreSQL cluster of the test's own, to stop and start at will.

Fault tests stop the database mid-load; doing that to the shared server would break
every other test, so they get a cluster of their own: `initdb` into a temporary folder
(run as the `postgres` system user when the tests run as root, as PostgreSQL refuses
to run as root), a free loopback port, its socket in the same folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from glob import glob
from pathlib import Path
from types import TracebackType


def postgres_bin(tool: str) -> Path:
    """Return the newest installed PostgreSQL server binary `tool` (initdb, pg_ctl…)."""
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if found:
        return Path(found[-1])
    on_path = shutil.which(tool)
    if on_path is None:
        raise FileNotFoundError(f"no PostgreSQL {tool} in /usr/lib/postgresql/*/bin or PATH")
    return Path(on_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostgres:
    """Run one PostgreSQL cluster in a temporary folder; stop, start and remove it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """Return the cluster's URL for the `postgres` database (user postgres, trust)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: Sequence[str | Path], timeout: float = 60) -> None:
        command = [str(a) for a in argv]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-800:]}")

    def create(self) -> None:
        """Initialise the cluster (trust auth, fsync off: test data only) and start it."""
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run([postgres_bin("initdb"), "-D", self.data, "-U", "postgres",
                   "--auth=trust", "--no-sync", "-E", "UTF8"])  # fmt: skip
        self.start()

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([postgres_bin("pg_ctl"), "-D", self.data, "-o", options, "-w", "-t", "60",
                   "-l", self.folder / "server.log", "start"])  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the cluster (`immediate`: like a crash, no shutdown checkpoint)."""
        self._run([postgres_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        """Stop the cluster if it runs and delete its folder."""
        with contextlib.suppress(RuntimeError):  # not running
            self.stop()
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.create()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()
