"""Open the permissions view of a ledger on its own datastore, once, on first use."""

from __future__ import annotations

import threading
from typing import cast

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

from ledger.application import ConsentLedger
from projections.database import translate_driver_errors
from projections.read_models.postgres import PostgresPermissionsView
from projections.read_models.sqlite import SQLitePermissionsView
from projections.read_models.view import READ_MODELS, PermissionsView

__all__ = ["ReadModel"]


class ReadModel:
    """Open the permissions view on first use, on the ledger's own datastore.

    Construction does no I/O (bootstrap stays fast); the first `view` creates the tables.
    """

    def __init__(self, ledger: ConsentLedger) -> None:
        self.ledger = ledger
        self._view: PermissionsView | None = None
        self._lock = threading.Lock()

    @property
    def view(self) -> PermissionsView:
        """Return the view, creating its tables and tracking row the first time."""
        if self._view is None:
            with self._lock:
                if self._view is None:
                    self._view = self._open()
        return self._view

    def close(self) -> None:
        """Close the view's own connections, if it was opened."""
        if self._view is not None:
            self._view.close()

    def _open(self) -> PermissionsView:
        try:
            return self._construct()
        except IntegrityError:
            # Another process created the library's tracking table at the same moment.
            return self._construct()

    def _construct(self) -> PermissionsView:
        factory = self.ledger.factory
        view: PermissionsView
        with translate_driver_errors(READ_MODELS):
            # The factory names the tracking table as the ledger's own recorders expect.
            if isinstance(factory, SQLiteFactory):
                view = cast(SQLitePermissionsView, factory.tracking_recorder(SQLitePermissionsView))
            elif isinstance(factory, PostgresFactory):
                view = factory.tracking_recorder(PostgresPermissionsView)
            else:
                raise TypeError(f"no permissions view for {type(factory).__name__}")
            name = f"{self.ledger.name}:permissions"
            if view.tracking_name != name or not factory.env_create_table():
                view.tracking_name = name
                view.create_table()
            events = self.ledger.recorder.events_table_name  # type: ignore[attr-defined]
            if isinstance(view, PostgresPermissionsView):
                view.follow(f'"{view.datastore.schema}"."{events}"', "notification_id")
            else:
                view.follow(events, "rowid")
        return view
