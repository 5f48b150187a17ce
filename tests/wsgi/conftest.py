"""Fixtures of the WSGI and Flask tests: the real stores through their sync face.

Memory, SQLite in ``tmp_path``, and Redis on 127.0.0.1:6379 under a prefix of its own
per test, whose keys are deleted afterwards (a missing Redis fails the run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sessionware.stores import MemoryStore, SQLiteStore
from sessionware.stores.base import StoreBase
from tests.test_auth_support import REDIS_URL

WSGI_STORES = ["memory", "sqlite", "redis"]


@pytest.fixture(params=WSGI_STORES)
def wsgi_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBase]:
    """Each real store in turn, used only through ``store.sync`` as a WSGI app uses it."""
    s: StoreBase
    if request.param == "memory":
        s = MemoryStore(development=True)
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "sessions.db")
    else:
        from sessionware.stores.redis import RedisStore

        s = RedisStore.from_url(REDIS_URL, prefix=f"swflask{uuid.uuid4().hex[:10]}:")
    yield s
    s.sync.close()
    if request.param == "redis":
        raw = redis.Redis.from_url(REDIS_URL)  # raw: keys are binary digests
        try:
            for key in raw.scan_iter(match=s.prefix + "*", count=1000):  # type: ignore[attr-defined]
                raw.delete(key)
        finally:
            raw.close()
