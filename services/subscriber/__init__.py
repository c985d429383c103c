"""Subscribe to the ledger's Kafka topics from another team's service.

The relay delivers at least once: after a crash it publishes the unacknowledged tail
again. This library turns that into "each record handled once" for a consumer group:

- `subscribe(topics, group_id, handler)` (or `Subscriber.run`) calls `handler` once per
  record, in partition order, and commits a record's offset only after the handler
  returned. A handler that raises is retried (same record, exponential backoff) and
  nothing after it on that partition is handled first.
- Redelivered records are skipped by their `(position, seq)` headers: a record whose
  identity was among the last `dedupe_window` handled on its partition, or is older than
  all of them, is a repeat (the relay re-publishes only its unacknowledged tail, in
  ledger order). After a restart or a rebalance, that window is recovered by reading
  back the records just before the committed offset, so repeats are skipped across
  restarts too.
- On a rebalance, offsets of handled records are committed before the partitions go.
- `bootstrap_state()` reads the compacted `consent.permissions.v1` topic from the
  beginning into a `PermissionTable` of current permissions, which `apply` then keeps
  current from the permission changes.

Iterating a `Subscriber` yields the same deduplicated records; one is committed when the
next is asked for (or when iteration ends normally).
"""

from services.subscriber.consumer import Subscriber, SubscriberStats, subscribe
from services.subscriber.messages import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    KAFKA_ENV,
    ConsentMessage,
    Identity,
    RecentIdentities,
)
from services.subscriber.state import PermissionTable, bootstrap_state

__all__ = [
    "DEFAULT_DEDUPE_WINDOW",
    "DEFAULT_HEARTBEAT_INTERVAL_MS",
    "DEFAULT_SESSION_TIMEOUT_MS",
    "KAFKA_ENV",
    "ConsentMessage",
    "Identity",
    "PermissionTable",
    "RecentIdentities",
    "Subscriber",
    "SubscriberStats",
    "bootstrap_state",
    "subscribe",
]
