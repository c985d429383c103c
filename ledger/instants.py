"""Parse and format the ledger's instants: ISO 8601 with a zone, always UTC inside.

A bare date means midnight UTC; a date-time without `Z` or an offset is refused, because
a consent's moment must not depend on the server's zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from ledger.errors import InvalidInstantError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d")  # a date, a separator, then a time
_HAS_ZONE = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")


def parse_instant(text: str, *, field: str = "time") -> datetime:
    """Return the UTC instant an ISO 8601 string names.

    Requires a zone (`Z` or `±HH:MM`) unless the string is a bare date (midnight UTC).
    Raises InvalidInstantError naming `field` and the text otherwise.
    """
    value = text.strip()
    if _DATE_ONLY.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as error:
            raise InvalidInstantError(f"{field}: {text!r} is not a valid date ({error})") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    not_iso = InvalidInstantError(
        f"{field}: {text!r} is not an ISO 8601 instant (want e.g. 2025-05-01T12:00:00Z, "
        "2025-05-01T14:00:00+02:00 or the date 2025-05-01)"
    )
    if not _DATE_TIME.match(value):
        raise not_iso
    if not _HAS_ZONE.search(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise not_iso from None
        raise InvalidInstantError(
            f"{field}: {text!r} has no zone; add Z or an offset such as +02:00"
        )
    try:
        return datetime.fromisoformat(value.replace("z", "Z")).astimezone(UTC)
    except ValueError:
        raise not_iso from None
    except OverflowError:
        raise InvalidInstantError(f"{field}: {text!r} is out of range") from None


def require_aware(value: datetime, *, field: str = "time") -> datetime:
    """Return `value` in UTC; refuse a naive datetime with InvalidInstantError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInstantError(f"{field}: {value.isoformat()!r} has no zone")
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """Return the canonical text of an instant: UTC, microseconds, `Z` suffix.

    The one UTC formatter of the code base (log records, checkpoints, exports, the wire
    format): 2026-11-26T17:00:00.123456Z, the year always four digits. Requires an aware
    datetime; raises InvalidInstantError for a naive one.
    """
    offset = value.utcoffset()
    if offset is None:
        raise InvalidInstantError(f"time: {value.isoformat()!r} has no zone")
    if offset:
        value = value.astimezone(UTC)
    # isoformat ends in "+00:00" for any zero offset; it is faster than strftime.
    return value.isoformat(timespec="microseconds")[:-6] + "Z"
