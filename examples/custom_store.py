"""A complete session store written outside sessionware, and held to its contract.

``DictStore`` keeps records in a Python dict behind one lock. That is the whole
backend, so what a store must *do* stands out: copy it, and replace each method's
body with your database's atomic operation (a MongoDB ``find_one_and_update``, a
DynamoDB conditional ``UpdateItem``, a MySQL transaction). The test suite at the end
of ``tests/test_custom_store.py`` runs sessionware's ``StoreContract`` against it;
run the same against yours.

Two faces: the store's coroutine methods serve ASGI apps (Starlette, FastAPI);
``store.sync`` serves WSGI apps (Flask) and scripts. A networked store calls its async
driver in the first and its sync driver in the second; here both use the dict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from sessionware.exceptions import SessionCollisionError, StoreError

Fields = Mapping[str, str]


def _utf8(fields: Fields) -> dict[str, str]:
    """A copy of ``fields``; text that has no UTF-8 form is refused, as databases do."""
    try:
        for name, value in fields.items():
            name.encode()
            value.encode()
    except UnicodeEncodeError:
        raise StoreError("DictStore refuses text that is not valid Unicode") from None
    return dict(fields)


class SyncDictStore:
    """The sync face, where the work is done; each method is one atomic step."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, tuple[dict[str, str], float]] = {}  # key -> (fields, expires)
        self._users: dict[str, set[str]] = {}  # user id -> their session keys

    def _live(self, key: str) -> dict[str, str] | None:
        found = self._records.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():  # expired: as good as missing
            del self._records[key]
            return None
        return found[0]

    def load(self, key: str) -> Fields | None:
        with self._lock:
            fields = self._live(key)
            return None if fields is None else dict(fields)

    def create(self, key: str, fields: Fields, ttl: float) -> None:
        with self._lock:
            if self._live(key) is not None:
                raise SessionCollisionError("a live record has this key")  # the core retries
            self._records[key] = (_utf8(fields), self._clock() + ttl)

    def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        # Atomic, and only on a live record: a request that finishes after a logout
        # must not bring the session back.
        with self._lock:
            fields = self._live(key)
            if fields is None:
                return False
            merged = {**fields, **_utf8(sets)}
            for name in dels:
                merged.pop(name, None)
            self._records[key] = (merged, self._clock() + ttl)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None:
        with self._lock:
            fields = self._live(key)
            if fields is None:
                if not create:
                    return None  # never bring a destroyed session back
                self._records[key] = ({field: str(amount)}, self._clock() + ttl)
                return amount
            value = int(fields.get(field, "0")) + amount
            fields[field] = str(value)  # the record keeps its expiry
            return value

    def link(self, user_id: str, key: str) -> None:
        with self._lock:
            self._users.setdefault(user_id, set()).add(key)

    def unlink(self, user_id: str, key: str) -> None:
        with self._lock:
            self._users.get(user_id, set()).discard(key)

    def keys_of(self, user_id: str) -> list[str]:
        with self._lock:
            keys = self._users.get(user_id, set())
            keys -= {k for k in keys if self._live(k) is None}  # drop the dead lazily
            return sorted(keys)

    def close(self) -> None:
        """Nothing to release: a real store closes its connection pool here."""


class DictStore:
    """The async face; ``store.sync`` is the sync one. Pass it as ``store=``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.sync = SyncDictStore(clock)

    # A dict never waits, so each coroutine calls the sync face directly. A networked
    # store awaits its async driver here instead (never a blocking call on the loop).
    async def load(self, key: str) -> Fields | None:
        return self.sync.load(key)

    async def create(self, key: str, fields: Fields, ttl: float) -> None:
        self.sync.create(key, fields, ttl)

    async def apply(self, key: str, sets: Fields, dels: list[str], ttl: float) -> bool:
        return self.sync.apply(key, sets, dels, ttl)

    async def delete(self, key: str) -> None:
        self.sync.delete(key)

    async def incr(
        self, key: str, field: str, amount: int, ttl: float, *, create: bool = True
    ) -> int | None:
        return self.sync.incr(key, field, amount, ttl, create=create)

    async def link(self, user_id: str, key: str) -> None:
        self.sync.link(user_id, key)

    async def unlink(self, user_id: str, key: str) -> None:
        self.sync.unlink(user_id, key)

    async def keys_of(self, user_id: str) -> list[str]:
        return self.sync.keys_of(user_id)

    async def close(self) -> None:
        self.sync.close()
