"""The composition root: settings in, wired objects out. Nothing is built at import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from ledger.application import Clock, ConsentLedger
from ledger.checkpoint import load_signing_key_or_create
from ledger.errors import InvalidInputError, LedgerNotFoundError
from ledger.vocabulary import ConsentModel, Purpose, Vocabulary
from projections.current_index import CurrentIndex
from projections.database import Database, DatabaseUrl
from projections.merkle_log import LogAnswers, LogService
from projections.read_models import ReadModel
from projections.reader import PermissionReader
from projections.runner import Projector
from projections.signals.service import AiSignalService
from projections.snapshots.lineage import DatasetStore, Lineage
from services.api_keys import ApiKeyStore
from services.keystore import (
    CHECKPOINT_KEY_FILE as CHECKPOINT_KEY_FILE,  # re-exported: tests and operators use it
)
from services.keystore import (
    MASTER_KEY_FILE,
    RETIRED_CHECKPOINT_KEYS_FILE,
    SqlSubjectKeyStore,
    load_or_create_secret,
    load_retired_keys,
)
from services.leases import Leases
from services.settings import Settings


@dataclass
class Services:
    """Everything an entrypoint needs, wired once from settings."""

    settings: Settings
    database: Database
    keys: SqlSubjectKeyStore
    ledger: ConsentLedger
    reader: PermissionReader
    api_keys: ApiKeyStore  # HTTP API keys; its table is created on first use
    projector: Projector  # keeps the read models; its tables are created on first use
    log: LogService  # the Merkle transparency log; its tables are created on first use
    transparency: LogAnswers  # what the /v1/ledger routes ask of the log
    lineage: Lineage  # training datasets registered from snapshots; tables on first use
    leases: Leases  # who leads each background duty (services.worker)
    signals: AiSignalService  # AI-usage signals: pages, lookup, site-wide files, evidence

    def close(self) -> None:
        """Release every connection the services hold."""
        self.projector.close()
        self.ledger.close()
        self.database.close()


def load_vocabulary(purposes_file: Path | None) -> Vocabulary:
    """Return the default vocabulary, extended by a JSON purposes file if one is set.

    The file holds `[{"name": ..., "model": "opt-in"|"terms-governed", "cawg_label": ...}]`.
    """
    vocabulary = Vocabulary()
    if purposes_file is None:
        return vocabulary
    try:
        rows = orjson.loads(purposes_file.read_bytes())
        extra = [
            Purpose(str(r["name"]), ConsentModel(r["model"]), r.get("cawg_label")) for r in rows
        ]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(f"purposes file {purposes_file}: {error}") from None
    return vocabulary.with_purposes(extra)


def event_store_table(url: DatabaseUrl) -> str:
    """Return the name of the event store's table (the eventsourcing recorder's naming)."""
    if url.dialect == "sqlite":
        return "stored_events"
    return f"{ConsentLedger.name.lower()}_events"


def bootstrap(
    settings: Settings, *, clock: Clock | None = None, existing_only: bool = False
) -> Services:
    """Wire the ledger for `settings`: database, keys, event store, vocabulary.

    With `existing_only` (read-only commands), a database that does not exist or holds no
    event store raises LedgerNotFoundError before anything (folder, file, schema, keys) is
    created.
    """
    url = DatabaseUrl.parse(settings.database_url)
    database = Database(url)
    if existing_only and not database.exists(event_store_table(url)):
        where = str(url.sqlite_path) if url.sqlite_path is not None else f"schema {url.schema}"
        raise LedgerNotFoundError(where)
    database.prepare()
    master_key = load_or_create_secret(settings.resolved_data_dir() / MASTER_KEY_FILE)
    keys = SqlSubjectKeyStore(database, master_key)
    keys.create_table()
    # The event store's tables are created here, under a cross-process lock, not by the
    # library's constructor: two processes starting at once on a new PostgreSQL schema
    # would otherwise collide in the catalog.
    ledger = ConsentLedger(
        {**url.eventsourcing_env(), "CREATE_TABLE": "n"},
        keys=keys,
        vocabulary=load_vocabulary(settings.purposes_file),
        clock=clock,
    )
    with database.exclusive("event-store-tables"):
        ledger.create_tables()
    projector = Projector(
        ledger, ReadModel(ledger), index=CurrentIndex() if settings.check_index else None
    )
    log = LogService(
        ledger,
        database,
        load_signing_key_or_create(settings.resolved_data_dir() / CHECKPOINT_KEY_FILE),
        log_id=settings.log_id,
        retired_keys=load_retired_keys(settings.resolved_data_dir() / RETIRED_CHECKPOINT_KEYS_FILE),
        every_events=settings.checkpoint_every_events,
        every_seconds=settings.checkpoint_every_seconds,
    )
    reader = PermissionReader(ledger, projector)
    signals = AiSignalService(
        reader,
        database,
        tdm_policy_url=settings.tdm_policy_url,
        template=settings.content_url_template,
        spool_dir=settings.resolved_data_dir() / "ai-signals",
    )
    return Services(
        settings=settings,
        database=database,
        keys=keys,
        ledger=ledger,
        reader=reader,
        api_keys=ApiKeyStore(database),
        projector=projector,
        log=log,
        transparency=LogAnswers(log),
        lineage=Lineage(ledger, log, DatasetStore(database)),
        leases=Leases(database),
        signals=signals,
    )
