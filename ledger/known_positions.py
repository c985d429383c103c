"""Bitemporal lookup: the highest ledger position recorded by an instant `known_at`.

The write pipeline keeps `recorded_at` non-decreasing along ledger positions (it reads
the clock under the writers' lock, never below the last recorded time), so a binary
search over the notification log by `recorded_at` finds it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from ledger.events import LedgerEvent


def position_known_at(app: Application[UUID], known_at: datetime | None) -> int:
    """Return the highest position recorded by `known_at` (0 for an empty ledger).

    With `known_at` None, the latest position. Positions may have gaps.
    """
    recorder = app.recorder
    top = recorder.max_notification_id() or 0
    if known_at is None or top == 0:
        return top

    def at_or_after(start: int, stop: int) -> Notification | None:
        batch = recorder.select_notifications(start=start, limit=1, stop=stop)
        return batch[0] if batch else None

    def recorded_at(notification: Notification) -> datetime:
        event = app.mapper.to_domain_event(notification)
        assert isinstance(event, LedgerEvent)
        return event.recorded_at

    last = at_or_after(top, top)
    assert last is not None
    if recorded_at(last) <= known_at:
        return top
    low, high = 0, top  # invariant: answer in [low, high), recorded_at(high) > known_at
    while high - low > 1:
        middle = (low + high) // 2
        found = at_or_after(middle, high)
        if found is None or recorded_at(found) > known_at:
            high = middle
        else:
            low = found.id
    return low
