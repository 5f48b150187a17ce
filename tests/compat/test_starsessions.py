"""sessionware.compat: starsessions' helpers, through real requests to an app."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.compat import (
    SessionAutoloadMiddleware,
    get_session_id,
    get_session_metadata,
    get_session_remaining_seconds,
    is_loaded,
    load_session,
    regenerate_session_id,
)
from sessionware.stores import MemoryStore
from sessionware.testing import ManualClock
from tests.helpers import SECRET, Browser, raw_id

pytestmark = pytest.mark.anyio


def app_of(clock: ManualClock, **options: Any) -> Starlette:
    async def show(request: Request) -> JSONResponse:
        await load_session(request)
        return JSONResponse(
            {
                "id": get_session_id(request),
                "loaded": is_loaded(request),
                "meta": get_session_metadata(request),
                "left": get_session_remaining_seconds(request),
            }
        )

    async def put(request: Request) -> JSONResponse:
        request.session["x"] = 1
        return JSONResponse({"ok": True})

    async def rotate(request: Request) -> JSONResponse:
        return JSONResponse({"id": await regenerate_session_id(request)})

    app = Starlette(routes=[Route("/", show), Route("/put", put), Route("/rotate", rotate)])
    app.add_middleware(SessionAutoloadMiddleware, paths=["/admin"])
    app.add_middleware(
        SessionMiddleware,
        store=MemoryStore(development=True, clock=clock),
        secrets=[SECRET],
        cookie_name="sid",
        clock=clock,
        idle_timeout=600,
        absolute_timeout=3600,
        **options,
    )
    return app


async def test_new_session_has_no_id_and_now_as_metadata() -> None:
    """A session never stored has no id (not a fresh random one), and its metadata is now."""
    clock = ManualClock()
    async with Browser(app_of(clock, max_age=1800), cookie_name="sid") as b:
        r = (await b.get("/")).json()
    now = int(clock())
    assert r == {
        "id": None,
        "loaded": True,
        "meta": {"created": now, "last_access": now, "lifetime": 1800},
        "left": 600.0,
    }


async def test_stored_session_reports_its_id_times_and_remaining_life() -> None:
    """Once stored: the cookie's id, when it was made and seen, and the sooner timeout."""
    clock = ManualClock()
    async with Browser(app_of(clock), cookie_name="sid") as b:
        await b.get("/put")
        made = int(clock())
        assert b.value is not None
        for _ in range(6):  # active within the idle timeout: each read refreshes it
            clock.advance(550)
            await b.get("/")
        r = (await b.get("/")).json()
        assert r["id"] == raw_id(b.value)
    assert r["meta"] == {"created": made, "last_access": made + 3300, "lifetime": 0}
    assert r["left"] == 300.0  # the absolute timeout comes first


async def test_regenerate_session_id_returns_the_new_id() -> None:
    """regenerate_session_id hands back the id the new cookie carries."""
    async with Browser(app_of(ManualClock()), cookie_name="sid") as b:
        await b.get("/put")
        old = b.value
        new_id = (await b.get("/rotate")).json()["id"]
        assert b.value is not None and b.value != old
        assert raw_id(b.value) == new_id
