"""The Kafka adapter: topic names and setup, the wire format, and the relay.

The relay's defaults live here so that the command line can show them without importing
the relay (and kafka-python) on every verb.
"""

from typing import Final

DEFAULT_BATCH_SIZE: Final = 500
"""Ledger events the relay publishes per batch."""

DEFAULT_POLL_INTERVAL_S: Final = 0.05
"""Seconds the relay waits between looks at the ledger once caught up."""
