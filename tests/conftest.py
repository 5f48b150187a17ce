"""Shared fixtures: asyncio as the anyio backend, and required services.

In CI (``CI=true``) a missing Redis or PostgreSQL fails the run: nothing is skipped.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (what uvicorn and our users run)."""
    return "asyncio"
