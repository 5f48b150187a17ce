"""The ``Store`` protocol: a small keyed box with expiry.

A store knows nothing of cookies, signing or passwords. Keys are already hashes of
session ids (never raw ids); a record is a flat mapping of field name to text (see
:mod:`sessionware.session`). Every method is a coroutine.

What to implement, and what must hold:

``load(key) -> Fields | None``
    One round trip. ``None`` when missing or expired. The returned mapping is
    treated as read-only by the caller.
``create(key, fields, ttl)``
    Store a new record that lives ``ttl`` seconds. Raise
    :class:`~sessionware.exceptions.SessionCollisionError` if the key exists (the
    core retries with a new id).
``apply(key, sets, dels, ttl) -> bool``
    **Atomically**: if the record exists and has not expired, set the fields in
    ``sets``, remove those in ``dels``, reset its lifetime to ``ttl`` and return
    True; otherwise change nothing and return False. This is what keeps two
    concurrent requests from losing each other's writes, and a slow request from
    resurrecting a session that was destroyed or revoked meanwhile.
``delete(key)``
    Remove the record (and nothing else). Deleting a missing key is not an error.
``link(user_id, key)`` / ``unlink(user_id, key)`` / ``keys_of(user_id)``
    The per-user index: find a user's sessions without scanning the store.
    ``keys_of`` returns only keys whose records are still alive (dead members may be
    dropped lazily).
``incr(key, field, amount, ttl, *, create=True) -> int | None``
    **Atomically** add ``amount`` to the integer in ``field`` and return the new
    value; an existing record keeps its expiry. With ``create=True`` a missing or
    expired record is created (holding only that field) to live ``ttl`` seconds:
    counters for login throttling live here, in the same store as the sessions.
    With ``create=False`` a missing or expired record stays missing and ``incr``
    returns ``None``, in the same atomic step, so ``Session.increment`` racing a
    ``destroy`` never brings the session back (the type says ``int`` only for
    ``create=True``).
``purge_expired() -> int`` (optional)
    Remove expired records, for stores that do not expire them by themselves.
``close()``
    Release connections.

Backend failures (down, timed out) must surface as
:class:`~sessionware.exceptions.StoreUnavailableError`, which the middleware turns
into a 503; never let a driver exception escape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol, overload, runtime_checkable

__all__ = ["Fields", "Store"]

Fields = Mapping[str, str]


@runtime_checkable
class Store(Protocol):
    """What the session core needs from a storage backend (see the module docstring)."""

    async def load(self, key: str) -> Fields | None: ...

    async def create(self, key: str, fields: Fields, ttl: float) -> None: ...

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool: ...

    async def delete(self, key: str) -> None: ...

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: Literal[True] = ...
    ) -> int: ...

    @overload
    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool
    ) -> int | None: ...

    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None: ...

    async def link(self, user_id: str, key: str) -> None: ...

    async def unlink(self, user_id: str, key: str) -> None: ...

    async def keys_of(self, user_id: str) -> list[str]: ...

    async def close(self) -> None: ...
