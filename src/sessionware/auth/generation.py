"""A per-user revocation generation: what makes "sign out everywhere" final.

Ending every session of a user means finding them, and a login or a remember-me
restore in flight during that sweep can add one the sweep never sees. So the sweep
first bumps the user's generation (one atomic ``Store.incr``), and every login and
restore reads the generation when it starts and again *after* its session is in the
user's index: a login that sees a different number undoes itself. Either the
second read came before the bump (then the session was indexed before the sweep
listed the index, and the sweep ends it), or after it (then the login ends itself).
A remember-me series records the generation it was issued under, so a series from
before a bump can never restore again.

Both are :mod:`operations <sessionware._ops>` (they yield store calls), run as part of
the login, restore and sweep operations on either face of the store.
"""

from __future__ import annotations

from sessionware._ops import Op
from sessionware.stores.base import Call
from sessionware.tokens import sha256_hex

__all__ = ["bump", "current", "generation_key"]

#: The record outlives every session and series (remember-me is capped at 400 days).
#: Should it ever expire, the number drops to 0 and every older series stops
#: matching: losing it only ever ends logins, never revives one.
_TTL = 401 * 86400.0


def generation_key(user_id: str) -> str:
    """The store key of a user's generation: hashed, so no user id can collide with it."""
    return "ug:" + sha256_hex("generation\0" + user_id)


def current(user_id: str) -> Op[int]:
    """The user's generation now (0 before the first bump)."""
    fields = yield Call("load", (generation_key(user_id),))
    try:
        return int(fields.get("g", "0")) if fields is not None else 0
    except ValueError:
        return -1  # a damaged record matches nothing: fail closed


def bump(user_id: str) -> Op[int]:
    """Start a new generation (before sweeping the user's sessions); return it."""
    value = yield Call("incr", (generation_key(user_id), "g", 1, _TTL))
    return int(value or 0)
