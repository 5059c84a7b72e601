"""The service's one clock: every time it writes or compares comes from `utcnow()`.

One module-level offset lets a test move time forward (tests/support/clock.py) instead of
sleeping; it is zero in the service.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC) + _offset


def travel(by: timedelta) -> None:
    """Move the clock by `by` (tests only: the service never calls it)."""
    global _offset
    _offset += by


def reset() -> None:
    """Back to the wall clock."""
    global _offset
    _offset = timedelta(0)
