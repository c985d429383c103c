"""The current permissions, read from the compacted topic and kept current by changes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from ledger.scopes import scope_text
from services.kafka.topics import TopicNames
from services.kafka.wire import (
    SCHEMA_PERMISSION,
    SCHEMA_PERMISSION_CHANGE,
    permission_key,
)
from services.subscriber.messages import ConsentMessage, servers_from_environment

# --------------------------------------------------------------------------- state


@dataclass
class PermissionTable:
    """Current permissions by `subject|purpose|party|scope`, as the ledger last published.

    Each value is the JSON of the record that set it (allowed, basis, position, …).
    `apply` folds in later records; an older position never overwrites a newer one.
    """

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    position: int = 0
    _removed_at: dict[str, int] = field(default_factory=dict)

    def apply(self, message: ConsentMessage) -> bool:
        """Fold a permissions record or a permission change in; return whether it applied."""
        if message.schema not in (SCHEMA_PERMISSION, SCHEMA_PERMISSION_CHANGE):
            return False
        position = message.position or 0
        if message.value is None:
            if message.key is None:
                return False
            key = message.key
        else:
            v = message.value
            key = permission_key(v["subject"], v["purpose"], v["party"], v["scope"])
        current = self.states.get(key)
        newest = current["position"] if current is not None else self._removed_at.get(key, 0)
        if position < newest:
            return False
        if message.value is None:
            self.states.pop(key, None)
            self._removed_at[key] = position
        else:
            self.states[key] = message.value
        self.position = max(self.position, position)
        return True

    def get(
        self,
        subject: str,
        purpose: str,
        party: str = "platform",
        content: str | None = None,
        aspect: str = "all",
    ) -> dict[str, Any] | None:
        """Return the state published for exactly this key, or None if there is none."""
        return self.states.get(permission_key(subject, purpose, party, scope_text(content, aspect)))

    def __len__(self) -> int:
        """Return how many keys hold a state."""
        return len(self.states)


def bootstrap_state(
    bootstrap_servers: str | None = None,
    *,
    topic: str = TopicNames().permissions,
    timeout_s: float = 30.0,
) -> PermissionTable:
    """Read the compacted permissions topic from the beginning into a PermissionTable.

    Reads up to the high-water mark each partition reported when it was first fetched
    (records produced meanwhile may be included). Raises TimeoutError if that takes
    longer than `timeout_s`.
    """
    servers = bootstrap_servers or servers_from_environment()
    if not servers:
        raise ValueError("no Kafka broker: pass bootstrap_servers or set KAFKA_BOOTSTRAP_SERVERS")
    table = PermissionTable()
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        client_id="consent-ledger-bootstrap",
        enable_auto_commit=False,
        allow_auto_create_topics=False,
        fetch_max_wait_ms=50,
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        if not partitions:
            return table
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        # The high-water mark comes with fetch responses (ListOffsets is unreliable on
        # some brokers), so read until every partition's position has reached it.
        while True:
            for records in consumer.poll(timeout_ms=100, max_records=5000).values():
                for record in records:
                    table.apply(ConsentMessage.from_record(record))
            marks = [consumer.highwater(tp) for tp in partitions]
            if all(
                m is not None and consumer.position(tp) >= m
                for tp, m in zip(partitions, marks, strict=True)
            ):
                return table
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout_s}s")
    finally:
        consumer.close(autocommit=False)
