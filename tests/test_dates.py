"""sessionware._dates: the one way pages and the CLI show a moment."""

from __future__ import annotations

import datetime
import re

from sessionware import _dates

NOW = 1_700_000_000.0


def test_when_is_iso_order_in_local_time() -> None:
    """The absolute form is YYYY-MM-DD HH:MM of the local clock."""
    expected = datetime.datetime.fromtimestamp(NOW).strftime("%Y-%m-%d %H:%M")
    assert _dates.when(NOW) == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", _dates.when(NOW))


def test_date_is_the_day_of_when() -> None:
    """The date form is the first part of the absolute form."""
    assert _dates.when(NOW).startswith(_dates.date(NOW) + " ")


def test_no_time_is_a_dash_everywhere() -> None:
    """A missing time reads as a dash, never as 1970."""
    assert _dates.when(None) == _dates.date(0) == _dates.ago(None, NOW) == "—"
    assert _dates.iso(None) == ""


def test_iso_carries_the_offset() -> None:
    """The machine form round-trips to the same instant."""
    parsed = datetime.datetime.fromisoformat(_dates.iso(NOW))
    assert parsed.tzinfo is not None
    assert parsed.timestamp() == NOW


def test_ago_picks_the_largest_whole_unit() -> None:
    """Relative times count the largest unit that fits, singular for one."""
    assert _dates.ago(NOW - 5, NOW) == "just now"
    assert _dates.ago(NOW - 60, NOW) == "1 minute ago"
    assert _dates.ago(NOW - 3 * 60 - 59, NOW) == "3 minutes ago"
    assert _dates.ago(NOW - 2 * 3600, NOW) == "2 hours ago"
    assert _dates.ago(NOW - 86400, NOW) == "1 day ago"
    assert _dates.ago(NOW - 15 * 86400, NOW) == "2 weeks ago"
    assert _dates.ago(NOW - 400 * 86400, NOW) == "1 year ago"


def test_ago_speaks_of_the_future() -> None:
    """A time ahead of now reads as 'in ...' (an expiry)."""
    assert _dates.ago(NOW + 3 * 86400 + 5, NOW) == "in 3 days"
