"""``MemoryStore``: sessions in this process's memory, for development and tests.

Everything is lost on restart and nothing is shared between worker processes, so it
logs a warning unless built with ``development=True``.

Like every store it has two faces: its coroutine methods for ASGI apps and
``store.sync`` for WSGI apps and scripts. Each operation is written once, as a
generator that does its work under one ``threading.Lock`` and asks for no I/O, so
both drivers simply run it to its end; the lock makes it safe from the event loop
and from many threads at once.
"""

from __future__ import annotations

import logging
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from sessionware._clock import SteadyClock
from sessionware._ops import Op
from sessionware.exceptions import SessionCollisionError, StoreError
from sessionware.stores.base import Fields, StoreBase

__all__ = ["MemoryStore"]

log = logging.getLogger("sessionware")

T = TypeVar("T")


def _storable(fields: Fields) -> dict[str, str]:
    """A copy of ``fields``, refused (as the other stores refuse it) if some text has
    no UTF-8 form, i.e. holds a lone surrogate."""
    try:
        for name, value in fields.items():
            if not (name.isascii() and value.isascii()):  # ASCII always encodes
                name.encode()
                value.encode()
    except UnicodeEncodeError:
        raise StoreError("memory store refuses text that is not valid Unicode") from None
    return dict(fields)


def _run(op: Op[T]) -> T:
    """Run an operation that yields nothing; a yield would be a bug in this module."""
    try:
        request = op.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    op.close()
    return _no_io(request)


@types.coroutine
def _arun(op: Op[T]) -> Op[T]:
    """Await an operation that yields nothing.

    ``yield from`` hands back its result without the StopIteration that
    :func:`_run` must catch, which makes ``load`` on the async face cheaper.
    """
    return (yield from op)


def _no_io(request: Any) -> NoReturn:
    raise RuntimeError(f"MemoryStore operations do no I/O, yet one asked for {request!r}")


class MemoryStore(StoreBase):
    """A dict with expiry and optional LRU eviction; operations are atomic under one lock."""

    kind = "memory"
    never_waits = True

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        development: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be positive or None")
        self._data: OrderedDict[str, tuple[Fields, float]] = OrderedDict()
        self._users: dict[str, set[str]] = {}
        self._max = max_entries
        self._lock = threading.Lock()
        # Expiry counts elapsed time, as the core's timeouts do: a system clock stepped
        # an hour forward must not expire every record at once (nor purge them).
        self._clock = clock or SteadyClock()
        if not development:
            log.warning(
                "MemoryStore keeps sessions in one process: they vanish on restart and are "
                "not shared between workers. Use SQLiteStore or RedisStore in production "
                "(pass development=True to silence this)."
            )

    # -- the drivers: nothing to perform, so both just run the operation ------

    def _drive(self, op: Op[T]) -> T:
        return _run(op)

    async def _adrive(self, op: Op[T]) -> T:
        return await _arun(op)

    # -- the operations (generators that never yield) ----------------------------

    def _live(self, key: str, now: float) -> Fields | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry[0]

    def _evict(self) -> None:
        """Drop least-recently-used records beyond ``max_entries`` (caller holds the lock)."""
        if self._max is not None:
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def load_inline(self, key: str) -> Fields | None:
        """The live record for ``key``, refreshing its LRU position (no I/O: any face)."""
        entry = self._data.get(key)  # one dict read is atomic: no lock on the hot path
        if entry is None:
            return None
        if entry[1] <= self._clock() or self._max is not None:
            with self._lock:
                fields = self._live(key, self._clock())
                if fields is not None and self._max is not None:
                    self._data.move_to_end(key)
                return fields
        return entry[0]

    def _op_load(self, key: str) -> Op[Fields | None]:
        """The live record for ``key`` (see :meth:`load_inline`)."""
        return self.load_inline(key)
        yield  # unreachable: makes this a generator, an operation like any store's

    def _op_create(self, key: str, fields: Fields, ttl: float) -> Op[None]:
        """Add a new record; the key must not be live."""
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not None:
                raise SessionCollisionError("session key already exists")
            self._data[key] = (_storable(fields), now + ttl)
            self._evict()
        return
        yield

    def _op_apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> Op[bool]:
        """Merge one request's changes into a live record (copy-on-write), or refuse."""
        with self._lock:
            now = self._clock()
            fields = self._live(key, now)
            if fields is None:
                return False
            merged = dict(fields)
            merged.update(_storable(sets))
            for name in dels:
                merged.pop(name, None)
            self._data[key] = (merged, now + ttl)
            return True
        yield

    def _op_incr(
        self, key: str, field: str, amount: int, ttl: float, create: bool
    ) -> Op[int | None]:
        """Add to an integer field; a missing record is created with ``ttl`` only if ``create``."""
        with self._lock:
            now = self._clock()
            fields = self._live(key, now)
            if fields is None:
                if not create:
                    return None
                value = amount
                self._data[key] = ({field: str(value)}, now + ttl)
                self._evict()
            else:
                value = int(fields.get(field, "0")) + amount
                self._data[key] = ({**fields, field: str(value)}, self._data[key][1])
            return value
        yield

    def _op_delete(self, key: str) -> Op[None]:
        """Remove a record."""
        with self._lock:
            self._data.pop(key, None)
        return
        yield

    def _op_link(self, user_id: str, key: str) -> Op[None]:
        """Index ``key`` under ``user_id``."""
        with self._lock:
            self._users.setdefault(user_id, set()).add(key)
        return
        yield

    def _op_unlink(self, user_id: str, key: str) -> Op[None]:
        """Remove ``key`` from ``user_id``'s index."""
        with self._lock:
            keys = self._users.get(user_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._users[user_id]
        return
        yield

    def _op_keys_of(self, user_id: str) -> Op[list[str]]:
        """The live keys of ``user_id``; dead ones are dropped from the index."""
        with self._lock:
            now = self._clock()
            keys = self._users.get(user_id, set())
            dead = {k for k in keys if self._live(k, now) is None}
            keys -= dead
            return sorted(keys)
        yield

    def _op_purge_expired(self) -> Op[int]:
        """Remove expired records; return how many."""
        with self._lock:
            now = self._clock()
            dead = [k for k, (_, exp) in self._data.items() if exp <= now]
            for k in dead:
                del self._data[k]
            return len(dead)
        yield

    def _op_user_ids(self) -> Op[list[str]]:
        """Every id in the user index (for ``sessionware sessions list`` without --user)."""
        with self._lock:
            return sorted(self._users)
        yield

    # -- the async face -------------------------------------------------------------

    async def load(self, key: str) -> Fields | None:
        """The live record at ``key``, or None."""
        return self.load_inline(key)

    async def purge_expired(self) -> int:
        """Remove expired records; return how many (``store.sync`` has it too)."""
        return await self._adrive(self._op_purge_expired())

    async def user_ids(self) -> list[str]:
        """Every id in the user index (for ``sessionware sessions list`` without --user)."""
        return await self._adrive(self._op_user_ids())

    def __len__(self) -> int:
        return len(self._data)
