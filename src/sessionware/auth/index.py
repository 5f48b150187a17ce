"""A user's records at store level: list the sessions in the user's index, end one.

The per-user index lists both the user's sessions and their remember-me series
(their ``rm:`` keys never take a session key's shape); these helpers read the
sessions and end them without any request, for the login path's session cap, the
device list and revocation alike. Both are :mod:`operations <sessionware._ops>`
yielding store calls, so they serve the async and the sync face alike.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from sessionware._ops import Op
from sessionware.auth import series as _series
from sessionware.auth.fields import SERIES, USER
from sessionware.stores.base import Call

__all__ = ["end", "num_or_zero", "records", "same"]


def same(a: str, b: str) -> bool:
    """Constant-time equality of two texts, any characters (compare_digest wants ASCII)."""
    return hmac.compare_digest(a.encode(), b.encode())


def num_or_zero(value: str | None) -> float:
    """A stored number, or 0 for a missing or damaged one (sorting must never fail)."""
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def records(user_id: str) -> Op[list[tuple[str, Mapping[str, str]]]]:
    """The user's live sessions (the index also lists remember-me series: skipped here)."""
    listed: list[str] = yield Call("keys_of", (user_id,))
    keys = [k for k in listed if not _series.is_series_key(k)]
    return (yield from _series.load_all(keys, USER, user_id))


def end(user_id: str, key: str, fields: Mapping[str, str], *, series_too: bool = True) -> Op[None]:
    """End one session in the store (not the current request's: see revocation).

    Its remember-me series goes first, so no restore can follow the session's end.
    """
    series = fields.get(SERIES)
    if series and series_too:
        yield from _series.revoke_series(series, user_id)
    yield Call("delete", (key,))
    yield Call("unlink", (user_id, key))
