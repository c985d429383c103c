"""Helpers of the HTTP API tests: a running app with a key per role, problem checks, a proxy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from fastapi.testclient import TestClient

from services.api_keys import Role
from services.bootstrap import Services
from services.http.app import create_app

TERMS_2025 = {
    "version": "2025-05",
    "effective_from": "2025-05-14",
    "clauses": [
        {"purpose": "ai-training", "default": "denied"},
        {"purpose": "personalization", "default": "granted"},
    ],
}


class Api:
    """A test client of one app, with a key per role."""

    def __init__(self, client: TestClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.keys = {role: services.api_keys.create(f"test-{role.value}", role)[1] for role in Role}

    def auth(self, role: Role = Role.ADMIN, **extra: str) -> dict[str, str]:
        """Return headers carrying the key of `role`, plus `extra` headers."""
        return {"Authorization": f"Bearer {self.keys[role]}", **extra}

    def get(self, url: str, role: Role = Role.ADMIN, **kwargs: Any) -> Any:
        """GET with the key of `role`."""
        return self.client.get(url, headers=self.auth(role, **kwargs.pop("headers", {})), **kwargs)

    def post(self, url: str, body: Any = None, role: Role = Role.ADMIN, **kwargs: Any) -> Any:
        """POST a JSON body with the key of `role`."""
        headers = self.auth(role, **kwargs.pop("headers", {}))
        return self.client.post(url, json=body, headers=headers, **kwargs)

    def position(self) -> int:
        """Return the ledger's latest position."""
        return self.services.ledger.ledger_position()


@contextmanager
def running_api(services: Services, **options: Any) -> Iterator[Api]:
    """Yield a client of a fresh app for `services`, its lifespan running."""
    with TestClient(create_app(services, **options)) as client:
        yield Api(client, services)


def assert_problem(response: Any, status: int, title: str | None = None) -> dict[str, Any]:
    """Assert that `response` is a problem+json of `status` (and `title`); return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:consent-ledger:problem:")
    assert body["title"]
    assert body["detail"]
    if title is not None:
        assert body["title"] == title, body
    return body


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """Forward a loopback port to another address until closed; close cuts every link.

    Lets a test take the database away from a running app without touching the shared
    PostgreSQL server: after `close()` the app's URL points at a closed loopback port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Listen and forward (again) on the same port."""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        server, self._server = self._server, None
        if server is not None:
            with suppress(OSError):  # wakes the accepting thread (close alone may not)
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
