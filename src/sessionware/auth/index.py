"""A user's records at store level: list the sessions in the user's index, end one.

The per-user index lists both the user's sessions and their remember-me series
(their ``rm:`` keys never take a session key's shape); these helpers read the
sessions and end them without any request, for the login path's session cap, the
device list and revocation alike.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from sessionware.auth import series as _series
from sessionware.auth.fields import SERIES, USER
from sessionware.stores.base import Store

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


async def records(store: Store, user_id: str) -> list[tuple[str, Mapping[str, str]]]:
    """The user's live sessions (the index also lists remember-me series: skipped here)."""
    keys = [k for k in await store.keys_of(user_id) if not _series.is_series_key(k)]
    return await _series.load_all(store, keys, USER, user_id)


async def end(
    store: Store, user_id: str, key: str, fields: Mapping[str, str], *, series_too: bool = True
) -> None:
    """End one session in the store (not the current request's: see revocation).

    Its remember-me series goes first, so no restore can follow the session's end.
    """
    series = fields.get(SERIES)
    if series and series_too:
        await _series.revoke_series(store, series, user_id)
    await store.delete(key)
    await store.unlink(user_id, key)
