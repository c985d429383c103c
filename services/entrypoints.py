"""Runners of the long-running entrypoints: serve the HTTP API, run the Kafka relay.

The command line starts these, but its package must not import the HTTP or Kafka
packages (the entrypoint packages stay independent; see docs/architecture.md). This
module is the one declared exception in the import contracts: it joins the entrypoints
to the services that `services.bootstrap` built, and the CLI calls only these functions.
FastAPI, uvicorn and kafka-python are imported only when the server or the relay
starts, so other verbs start fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.http import DOCS_PATH
from services.kafka import DEFAULT_BATCH_SIZE, DEFAULT_POLL_INTERVAL_S

if TYPE_CHECKING:
    from services.bootstrap import Services
    from services.kafka.relay import RelayStats
    from services.settings import Settings

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_POLL_INTERVAL_S",
    "DOCS_PATH",
    "run_relay",
    "serve_http",
]


def serve_http(services: Services, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the HTTP API for `services` on host:port until interrupted.

    With `workers` > 1, that many API processes share the port (uvicorn workers); each
    builds its own services from the environment (`app_from_environment`), so the
    settings these services were built with are passed on as environment variables.
    """
    import uvicorn

    from services.http.app import APP_FACTORY, create_app

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # the app logs each request itself, without paths or keys
        "log_level": "warning",
        "lifespan": "on",
    }
    if workers == 1:
        uvicorn.run(create_app(services), **options)
        return
    os.environ.update(settings_environment(services.settings))
    uvicorn.run(APP_FACTORY, factory=True, workers=workers, **options)


def relay_batches(services: Services) -> tuple[Callable[[], int], float, Callable[[], None]]:
    """Return a Kafka relay's (publish one batch, idle poll seconds, close), for the
    worker's `relay` duty. Requires `settings.kafka_bootstrap_servers`."""
    from services.kafka.relay import build_relay

    relay = build_relay(services)
    return relay.publish_batch, relay.options.poll_interval_s, relay.close


def settings_environment(settings: Settings) -> dict[str, str]:
    """Return the environment variables that make `Settings.from_env` give these settings'
    database, data dir and broker (what the command line may override)."""
    env = {
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_DATA_DIR": str(settings.resolved_data_dir()),
    }
    if settings.kafka_bootstrap_servers:
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    return env


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
