"""Shared fixtures: asyncio as the anyio backend, and required services.

In CI (``CI=true``) a missing Redis or PostgreSQL fails the run: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionware.stores import Store
from tests.test_auth_support import STORES, Clock, open_store


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (what uvicorn and our users run)."""
    return "asyncio"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each real store in turn (memory, SQLite, Redis, PostgreSQL); modules and store
    contract classes that need one particular store define their own ``store``."""
    async with open_store(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    """A clock moved by hand (tests pass it as ``clock=`` instead of sleeping)."""
    return Clock()
