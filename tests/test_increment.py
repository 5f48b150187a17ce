"""Session.increment: counters that concurrent requests of one browser never lose."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from tests.test_auth_support import BASE, SECRET, STORES, open_store

pytestmark = pytest.mark.anyio


async def bump(request: Request) -> PlainTextResponse:
    """Count through the store, after yielding so requests really overlap."""
    await anyio.sleep(0)
    value = await request.session.increment("hits")
    return PlainTextResponse(str(value))


async def naive(request: Request) -> PlainTextResponse:
    """Count the way express-session apps do: read, then write the whole value back."""
    n = request.session.get("hits", 0)
    await anyio.sleep(0.001)
    request.session["hits"] = n + 1
    return PlainTextResponse(str(n + 1))


async def show(request: Request) -> JSONResponse:
    """What the store holds now."""
    return JSONResponse(dict(request.session))


@pytest.mark.parametrize("kind", STORES)
async def test_concurrent_increments_all_land(kind: str, tmp_path: Path) -> None:
    """Fifty concurrent requests of one browser each add one, and the count ends at fifty."""
    async with open_store(kind, tmp_path) as store:
        app = Starlette(routes=[Route("/bump", bump), Route("/naive", naive), Route("/", show)])
        app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            first = await c.get("/bump")  # creates the session
            assert first.text == "1" and "set-cookie" in first.headers
            async with anyio.create_task_group() as tg:
                for _ in range(49):
                    tg.start_soon(c.get, "/bump")
            assert (await c.get("/")).json() == {"hits": 50}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_read_then_write_counting_loses_updates(kind: str, tmp_path: Path) -> None:
    """The contrast: session[k] = session[k] + 1 under concurrency loses counts."""
    async with open_store(kind, tmp_path) as store:
        app = Starlette(routes=[Route("/naive", naive), Route("/", show)])
        app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            await c.get("/naive")
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(c.get, "/naive")
            assert (await c.get("/")).json()["hits"] < 21


async def test_increment_refuses_a_non_int_value(tmp_path: Path) -> None:
    """Incrementing a value that is not an int fails at once and writes nothing."""
    async with open_store("memory", tmp_path) as store:

        async def bad(request: Request) -> PlainTextResponse:
            request.session["hits"] = "many"
            with pytest.raises(TypeError, match="'hits'"):
                await request.session.increment("hits")
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/bad", bad), Route("/", show)])
        app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            assert (await c.get("/bad")).text == "ok"
            assert (await c.get("/")).json() == {"hits": "many"}


async def test_increment_after_a_set_in_the_same_request_writes_the_incremented_value() -> None:
    """session[k] = v, then increment(k): the response writes the incremented value, not v."""
    from sessionware.core import SessionCore
    from sessionware.session import Session
    from sessionware.stores import MemoryStore

    core = SessionCore.build(MemoryStore(development=True), ["s" * 40], None, {}, adapter="t")
    first = Session(core, None, None)
    first["n"] = 0
    await core.arun(core.write(first))
    session = Session(core, first.id, await core.store.load(first.key), first.key)
    session["n"] = 5
    assert await session.increment("n") == 6
    await core.arun(core.write(session))
    stored = await core.store.load(first.key)
    assert stored is not None and stored[".n"] == "6"
