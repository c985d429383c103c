"""Name and create the Kafka topics the ledger publishes to (BRIEF §6).

Two topics are logs kept for a time (`cleanup.policy=delete`, `retention.ms`); two are
current-state tables kept by key (`cleanup.policy=compact`), where a null value is a
tombstone. `ensure_topics` creates whichever are missing and leaves existing ones alone.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, for_code

DEFAULT_PARTITIONS: Final = 3
DEFAULT_RETENTION_MS: Final = 7 * 24 * 60 * 60 * 1000
"""Retention of the time-based topics: 7 days, Kafka's own default, stated explicitly."""

_LEGAL_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's Topic.validate rule


class TopicSetupError(RuntimeError):
    """Signal that the broker refused to create a topic."""

    def __init__(self, topic: str, error: str, message: str | None) -> None:
        """Record the topic, the Kafka error name and the broker's message."""
        super().__init__(f"cannot create topic {topic!r}: {error}: {message or 'no message'}")
        self.topic = topic
        self.error = error


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Hold the names of the four ledger topics; defaults are BRIEF §6's.

    Each name must be a legal Kafka topic name (1-249 of `A-Za-z0-9._-`, not `.`/`..`),
    and the four must differ.
    """

    events: str = "consent.events.v1"
    """Every ledger event, keyed by subject; time retention."""
    permission_changes: str = "consent.permission-changes.v1"
    """Each change of an effective permission, keyed by subject; time retention."""
    permissions: str = "consent.permissions.v1"
    """Current permission per `subject|purpose|party|scope`; compacted, tombstone on erasure."""
    checkpoints: str = "consent.checkpoints.v1"
    """Each signed checkpoint, keyed by log id; compacted."""
    dataset_impacts: str = "consent.dataset-impacts.v1"
    """Each registered dataset's item turned from allowed to denied, keyed by dataset."""

    def __post_init__(self) -> None:
        """Reject illegal or duplicate topic names."""
        for f in fields(self):
            name = getattr(self, f.name)
            if not _LEGAL_TOPIC.fullmatch(name) or name in {".", ".."}:
                raise ValueError(f"{f.name}: illegal Kafka topic name {name!r}")
        if len(set(self.all())) != len(self.all()):
            raise ValueError(f"topic names must differ, got {self.all()}")

    def all(self) -> tuple[str, ...]:
        """Return the names in BRIEF order: events, changes, permissions, checkpoints,
        then dataset impacts (issue 10)."""
        return (
            self.events,
            self.permission_changes,
            self.permissions,
            self.checkpoints,
            self.dataset_impacts,
        )

    def compacted(self) -> tuple[str, str]:
        """Return the names of the compacted topics (permissions, checkpoints)."""
        return (self.permissions, self.checkpoints)

    def prefixed(self, prefix: str) -> TopicNames:
        """Return these names with `prefix` in front, e.g. to isolate tests on one broker."""
        return TopicNames(*(prefix + name for name in self.all()))


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Describe one topic to create: name, partition count and topic configs."""

    name: str
    partitions: int
    configs: Mapping[str, str] = field(hash=False)


def topic_specs(
    names: TopicNames | None = None,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    retention_ms: int = DEFAULT_RETENTION_MS,
) -> tuple[TopicSpec, ...]:
    """Return the specs of the four ledger topics, in `TopicNames.all()` order.

    Requires partitions >= 1 and retention_ms >= 1 (milliseconds).
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if retention_ms < 1:
        raise ValueError(f"retention_ms must be >= 1, got {retention_ms}")
    if names is None:
        names = TopicNames()
    timed = {"cleanup.policy": "delete", "retention.ms": str(retention_ms)}
    compacted = {"cleanup.policy": "compact"}
    return (
        TopicSpec(names.events, partitions, dict(timed)),
        TopicSpec(names.permission_changes, partitions, dict(timed)),
        TopicSpec(names.permissions, partitions, dict(compacted)),
        TopicSpec(names.checkpoints, partitions, dict(compacted)),
        TopicSpec(names.dataset_impacts, partitions, dict(timed)),
    )


def ensure_topics(
    bootstrap_servers: str,
    names: TopicNames | None = None,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
    retention_ms: int = DEFAULT_RETENTION_MS,
    timeout_s: float = 10.0,
) -> tuple[str, ...]:
    """Create the ledger topics that do not exist yet; return the names it created.

    Idempotent and safe to race: existing topics (also ones created concurrently) are
    accepted as they are, their partitions and configs are not checked or changed.
    Waits until every topic has a leader for each partition. Requires
    replication_factor >= 1; raises TopicSetupError if the broker refuses a topic and
    kafka-python's KafkaError if the broker cannot be reached within `timeout_s`.
    """
    if replication_factor < 1:
        raise ValueError(f"replication_factor must be >= 1, got {replication_factor}")
    specs = topic_specs(names, partitions=partitions, retention_ms=retention_ms)
    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="consent-ledger-topics",
        request_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        if missing:
            response: dict[str, Any] = admin.create_topics(
                {
                    spec.name: {
                        "num_partitions": spec.partitions,
                        "replication_factor": replication_factor,
                        "configs": dict(spec.configs),
                    }
                    for spec in missing
                },
                timeout_ms=timeout_ms,
                raise_errors=False,
            )
            for result in response["topics"]:
                error = for_code(result["error_code"])
                if result["error_code"] == 0:
                    created.append(result["name"])
                elif error is not TopicAlreadyExistsError:  # lost a race: fine
                    raise TopicSetupError(
                        result["name"], error.__name__, result.get("error_message")
                    )
        admin.wait_for_topics([spec.name for spec in specs], timeout_ms=timeout_ms)
        return tuple(spec.name for spec in specs if spec.name in created)
    finally:
        admin.close()


__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_RETENTION_MS",
    "TopicNames",
    "TopicSetupError",
    "TopicSpec",
    "ensure_topics",
    "topic_specs",
]


def require_listening(bootstrap_servers: str, *, timeout_s: float) -> None:
    """Return once any server in `bootstrap_servers` accepts a TCP connection.

    Raises OSError naming the last failure when none does within `timeout_s` seconds.
    """
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise OSError(f"no bootstrap servers in {bootstrap_servers!r}")
    last_error: OSError | None = None
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection(
                (host.strip("[]") or server, int(port or 9092)), timeout_s
            ):
                return
        except (OSError, ValueError) as error:
            last_error = OSError(f"{server}: {error}")
    assert last_error is not None
    raise last_error
