"""Slow clients (slowloris-style) do not starve a real server: others are still answered."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_support import Server, start_server

pytestmark = pytest.mark.timeout(120)

SLOW_CLIENTS = 150
ANSWER_WITHIN_S = 2.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start_server(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "data")
    yield running
    running.stop()


def test_a_server_held_by_slow_clients_still_answers_others_promptly(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for n in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            # half the clients dribble headers, half declare a body they never finish
            if n % 2:
                sock.sendall(b"GET /v1/check?subject=a&purpose=ai-training HTTP/1.1\r\nHost: x\r\n")
            else:
                sock.sendall(
                    b"POST /v1/subjects/a/grants HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                )
            slow.append(sock)
        for round_ in range(3):
            for n, sock in enumerate(slow):
                # the server may cut a slow client off: that is allowed
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n" if n % 2 else b" ")
            started = time.monotonic()
            answer = httpx.get(f"{server.url}/healthz", timeout=ANSWER_WITHIN_S)
            took = time.monotonic() - started
            assert answer.status_code == 200
            assert took < ANSWER_WITHIN_S, f"round {round_}: /healthz took {took:.2f}s"
            unauthorised = httpx.get(
                f"{server.url}/v1/check", params={"subject": "a", "purpose": "ai-training"}
            )
            assert unauthorised.status_code == 401
    finally:
        for sock in slow:
            sock.close()
    assert server.process.poll() is None, "the server died under slow clients"
