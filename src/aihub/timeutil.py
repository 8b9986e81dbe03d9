"""Time helpers: timezone-aware parsing, the hourly grid, epoch microseconds.

Storage keeps instants as integer microseconds since the Unix epoch (UTC); the API speaks
ISO 8601 with an explicit zone. A naive timestamp is an error, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

HOUR_US = 3_600_000_000
# Readings and weather must lie in this window: before it integer hour arithmetic would
# need negative flooring; after it a typo (year 20240) is far more likely than real data.
MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_us(ts: datetime) -> int:
    """Epoch microseconds of an aware datetime (exact, no float rounding)."""
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def floor_hour(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, seconds precision unless sub-second."""
    ts = ts.astimezone(UTC)
    text = ts.isoformat(timespec="microseconds" if ts.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def require_aware(ts: datetime, field: str) -> datetime:
    """Reject naive datetimes and instants outside the supported range."""
    from aihub.errors import InvalidInput

    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidInput(f"{field}: timestamp has no timezone; add 'Z' or an offset like +01:00")
    if not (MIN_TS <= ts < MAX_TS):
        raise InvalidInput(f"{field}: timestamp {ts.isoformat()} is outside 1970..2200")
    return ts.astimezone(UTC)


_ZONES: frozenset[str] | None = None


def is_valid_timezone(name: str) -> bool:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if name in _ZONES or name == "UTC":
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
