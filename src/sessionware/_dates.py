"""One way to show a moment to people: the demo's pages and the CLI print the same text.

Times are Unix timestamps (what the stores keep) shown in the machine's local time.
The absolute form is ISO 8601's order (``2025-01-31 14:05``) because it reads the same
in every locale and sorts as text; the relative form (``3 minutes ago``) is for lists
where "how long ago" matters more than "when", with the absolute form beside it.
"""

from __future__ import annotations

import datetime
import time

__all__ = ["ago", "date", "iso", "when"]

_NONE = "—"

#: Unit, seconds in it, from the largest down; a month is 30 days (a list, not a calendar).
_UNITS: tuple[tuple[str, int], ...] = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
)


def _local(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts).astimezone()


def when(ts: float | None) -> str:
    """``2025-01-31 14:05`` in local time; a dash for no time."""
    if not ts:
        return _NONE
    return _local(ts).strftime("%Y-%m-%d %H:%M")


def date(ts: float | None) -> str:
    """``2025-01-31`` in local time; a dash for no time."""
    if not ts:
        return _NONE
    return _local(ts).strftime("%Y-%m-%d")


def iso(ts: float | None) -> str:
    """Full ISO 8601 with the UTC offset, for machines (``<time datetime>``, JSON)."""
    if not ts:
        return ""
    return _local(ts).isoformat(timespec="seconds")


def ago(ts: float | None, now: float | None = None) -> str:
    """``3 minutes ago`` / ``in 2 days`` / ``just now``: the largest whole unit.

    ``now`` comes in so tests pass a fixed time; it defaults to the wall clock.
    """
    if not ts:
        return _NONE
    delta = (time.time() if now is None else now) - ts
    seconds = abs(delta)
    if seconds < 60:
        return "just now"
    for unit, size in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"{text} ago" if delta > 0 else f"in {text}"
    return "just now"  # unreachable: a minute is the smallest unit above
