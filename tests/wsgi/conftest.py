"""Fixtures of the WSGI and Flask tests: the real stores through their sync face.

Memory, SQLite in ``tmp_path``, and Redis on 127.0.0.1:6379 under a prefix of its own
per test, whose keys are deleted afterwards (a missing Redis fails the run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware.stores.base import StoreBase
from tests.test_auth_support import sync_store

WSGI_STORES = ["memory", "sqlite", "redis"]


@pytest.fixture(params=WSGI_STORES)
def wsgi_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBase]:
    """Each real store in turn, used only through ``store.sync`` as a WSGI app uses it."""
    with sync_store(request.param, tmp_path) as s:
        yield s
