"""The one settings object: every environment variable the ledger reads, in one place.

Flags of the CLI override these; nothing else reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///consent-ledger.db"


@dataclass(frozen=True)
class Settings:
    """Configuration of one ledger deployment."""

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path | None = None  # keys; default: beside the SQLite file, or ./ledger-data
    kafka_bootstrap_servers: str | None = None
    topic_prefix: str = ""
    log_format: str = "auto"  # "json", "console" or "auto" (console on a terminal)
    log_level: str = "info"
    log_id: str = "consent-ledger"
    purposes_file: Path | None = None
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: float = 60.0
    api_group_commit: bool = True  # HTTP writes share transactions (off: one per write)
    api_commit_max_batch: int = 512  # most writes one group-commit transaction appends
    tdm_policy_url: str | None = None  # TDMRep `tdm-policy` served with AI signals
    rate_limit_per_second: float = 1000.0  # per API key and API process; 0: off
    rate_limit_burst: float = 2000.0
    idempotency_lease_seconds: float = 60.0  # a pending Idempotency-Key is recovered after

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables (os.environ by default)."""
        source = os.environ if env is None else env
        data_dir = source.get("LEDGER_DATA_DIR")
        purposes = source.get("LEDGER_PURPOSES_FILE")
        return cls(
            database_url=source.get("LEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            data_dir=Path(data_dir) if data_dir else None,
            kafka_bootstrap_servers=source.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            topic_prefix=source.get("LEDGER_TOPIC_PREFIX", ""),
            log_format=source.get("LEDGER_LOG_FORMAT", "auto"),
            log_level=source.get("LEDGER_LOG_LEVEL", "info"),
            log_id=source.get("LEDGER_LOG_ID", "consent-ledger"),
            purposes_file=Path(purposes) if purposes else None,
            checkpoint_every_events=int(source.get("LEDGER_CHECKPOINT_EVERY_EVENTS", "1000")),
            checkpoint_every_seconds=float(source.get("LEDGER_CHECKPOINT_EVERY_SECONDS", "60")),
            api_group_commit=source.get("LEDGER_API_GROUP_COMMIT", "on").lower()
            not in ("0", "off", "false", "no"),
            api_commit_max_batch=int(source.get("LEDGER_API_COMMIT_MAX_BATCH", "512")),
            tdm_policy_url=source.get("LEDGER_TDM_POLICY_URL") or None,
            rate_limit_per_second=float(source.get("LEDGER_RATE_LIMIT_PER_SECOND", "1000")),
            rate_limit_burst=float(source.get("LEDGER_RATE_LIMIT_BURST", "2000")),
            idempotency_lease_seconds=float(source.get("LEDGER_IDEMPOTENCY_LEASE_SECONDS", "60")),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given fields replaced where the value is not None."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def resolved_data_dir(self) -> Path:
        """Return the folder for keys: LEDGER_DATA_DIR, or beside the SQLite database."""
        if self.data_dir is not None:
            return self.data_dir
        if self.database_url.startswith("sqlite:///"):
            db = Path(self.database_url[len("sqlite:///") :])
            return db.parent / f"{db.stem}-data"
        return Path("ledger-data")
