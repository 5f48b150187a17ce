"""A store written outside sessionware (``examples/custom_store.py``) passes the exported
``StoreContract`` and serves a real app: what a third-party store's own tests look like."""

from __future__ import annotations

import runpy
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.stores.base import Store
from sessionware.testing import ManualClock, StoreContract
from tests.helpers import SECRET

EXAMPLE: dict[str, Any] = runpy.run_path(
    str(Path(__file__).resolve().parents[1] / "examples" / "custom_store.py")
)
DictStore = EXAMPLE["DictStore"]


class TestDictStore(StoreContract):
    """sessionware's own store tests, run against the example store (both faces)."""

    uses_clock = True

    @pytest.fixture
    async def backend(self, clock: ManualClock) -> AsyncIterator[Store]:
        store = DictStore(clock=clock)
        yield store
        await store.close()


@pytest.mark.anyio
async def test_the_example_store_serves_an_app() -> None:
    async def count(request: Request) -> PlainTextResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    app = Starlette(routes=[Route("/", count)])
    app.add_middleware(SessionMiddleware, store=DictStore(), secrets=[SECRET])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        assert [(await c.get("/")).text for _ in range(3)] == ["1", "2", "3"]


def test_a_broken_store_fails_the_contract(tmp_path: Path) -> None:
    """The contract can fail: a store whose apply writes to a deleted record (the bug
    that resurrects logged-out sessions) is caught by it, in a pytest run of its own."""
    example = Path(__file__).resolve().parents[1] / "examples" / "custom_store.py"
    (tmp_path / "test_broken_store.py").write_text(
        textwrap.dedent(
            f"""
            import runpy
            import pytest
            from sessionware.testing import StoreContract

            ex = runpy.run_path({str(example)!r})

            class Resurrecting(ex["SyncDictStore"]):
                def apply(self, key, sets, dels, ttl):
                    with self._lock:
                        fields = self._live(key) or {{}}
                        self._records[key] = ({{**fields, **sets}}, self._clock() + ttl)
                        return True

            class Broken(ex["DictStore"]):
                def __init__(self, clock):
                    self.sync = Resurrecting(clock)

            class TestBroken(StoreContract):
                uses_clock = True

                @pytest.fixture
                async def backend(self, clock):
                    yield Broken(clock)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_broken_store.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_apply_on_deleted_record_returns_false_and_does_not_resurrect" in result.stdout
    assert "test_create_then_load_returns_the_fields" not in result.stdout  # the rest passes
