"""Run `consent-ledger serve` in a subprocess on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS = 60.0


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running API server: its base URL, the admin key it printed, its process."""

    url: str
    admin_key: str | None
    banner: list[str]
    process: subprocess.Popen[str]

    def stop(self) -> int:
        """Stop the server with SIGTERM (as a supervisor would); return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_server(
    database_url: str,
    data_dir: Path,
    *extra_env: tuple[str, str],
    serve_args: Sequence[str] = (),
    startup_seconds: float = STARTUP_SECONDS,
) -> Server:
    """Start `consent-ledger serve [SERVE_ARGS]`; wait until it prints its docs line and answers."""
    port = free_port()
    env = {**os.environ, "LEDGER_LOG_FORMAT": "json", **dict(extra_env)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--data-dir",
            str(data_dir),
            *serve_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + startup_seconds
    while not any("API docs at" in line for line in banner):
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the server exited before serving: {banner}")
        banner.append(line.rstrip("\n"))
        assert time.monotonic() < deadline, f"no docs line in time: {banner}"
    key_lines = [line for line in banner if line.startswith("cl_")]
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server never answered /healthz"
        time.sleep(0.1)
    return Server(url, key_lines[-1] if key_lines else None, banner, process)
