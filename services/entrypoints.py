"""Runners of the long-running entrypoints: serve the HTTP API, run the Kafka relay.

The command line starts these, but its package must not import the HTTP or Kafka
packages (the entrypoint packages stay independent; see docs/architecture.md). This
module is the one declared exception in the import contracts: it joins the entrypoints
to the services that `services.bootstrap` built, and the CLI calls only these functions.
FastAPI, uvicorn and kafka-python are imported only when the server or the relay
starts, so other verbs start fast.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from services.http import DOCS_PATH
from services.kafka import DEFAULT_BATCH_SIZE, DEFAULT_POLL_INTERVAL_S

if TYPE_CHECKING:
    from services.bootstrap import Services
    from services.kafka.relay import RelayStats

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_POLL_INTERVAL_S",
    "DOCS_PATH",
    "run_relay",
    "serve_http",
]


def serve_http(services: Services, *, host: str, port: int) -> None:
    """Serve the HTTP API for `services` on host:port until interrupted."""
    import uvicorn

    from services.http.app import create_app

    uvicorn.run(
        create_app(services),
        host=host,
        port=port,
        access_log=False,  # the app logs each request itself, without paths or keys
        log_level="warning",
        lifespan="on",
    )


def run_relay(
    services: Services,
    stop: threading.Event,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    until_caught_up: bool = False,
    give_up_after_s: float | None = None,
) -> RelayStats:
    """Publish the ledger to Kafka until `stop` is set (or caught up); return the counts.

    Raises InvalidInputError for a batch size below 1 or a non-positive interval, and
    RelayConfigurationError when no broker is configured.
    """
    from services.kafka.relay import RelayOptions, build_relay

    options = RelayOptions(batch_size=batch_size, poll_interval_s=poll_interval_s)
    relay = build_relay(services, options=options)
    try:
        return relay.run(stop, until_caught_up=until_caught_up, give_up_after_s=give_up_after_s)
    finally:
        relay.close()
