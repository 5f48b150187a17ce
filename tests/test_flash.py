"""Flash messages (``sessionware.flash``): kept per message, shown once, in order, on
every store and on Flask; parallel requests flashing into one session lose nothing,
against a real server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.flash import MAX_MESSAGE, flash, get_flashed_messages
from sessionware.stores import Store
from tests.helpers import SECRET, Browser
from tests.servers import free_port, serve, stop

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def _app(store: Store) -> Starlette:
    async def add(request: Request) -> PlainTextResponse:
        for m in request.query_params.getlist("m"):
            flash(request, m, request.query_params.get("c", "message"))
        return PlainTextResponse("flashed")

    async def show(request: Request) -> JSONResponse:
        only = request.query_params.getlist("only")
        first = get_flashed_messages(request, with_categories=True, category_filter=only)
        again = get_flashed_messages(request)  # the same request: the same messages
        return JSONResponse({"pairs": first, "again": again})

    async def both(request: Request) -> JSONResponse:
        flash(request, "made and shown at once", "info")
        return JSONResponse(get_flashed_messages(request))

    app = Starlette(routes=[Route("/flash", add), Route("/show", show), Route("/both", both)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
    return app


async def test_a_message_is_shown_once_in_order_with_its_category(store: Store) -> None:
    async with Browser(_app(store)) as b:
        await b.get("/flash", params={"m": "first", "c": "ok"})
        await b.get("/flash", params={"m": ["second", "third"], "c": "error"})
        shown = (await b.get("/show")).json()
        assert shown["pairs"] == [["ok", "first"], ["error", "second"], ["error", "third"]]
        assert shown["again"] == ["first", "second", "third"]
        assert (await b.get("/show")).json()["pairs"] == []


async def test_a_category_filter_leaves_nothing_behind_unseen_by_the_request(
    store: Store,
) -> None:
    """As in Flask: the request takes every message, the filter picks what it returns."""
    async with Browser(_app(store)) as b:
        await b.get("/flash", params={"m": "bad", "c": "error"})
        await b.get("/flash", params={"m": "good", "c": "ok"})
        shown = (await b.get("/show", params={"only": "error"})).json()
        assert shown["pairs"] == [["error", "bad"]]
        assert shown["again"] == ["bad", "good"]
        assert (await b.get("/show")).json()["pairs"] == []


async def test_reading_messages_of_nobody_sets_no_cookie(store: Store) -> None:
    async with Browser(_app(store)) as b:
        r = await b.get("/show")
        assert r.json()["pairs"] == [] and "set-cookie" not in r.headers


async def test_a_message_flashed_and_shown_in_one_request_is_gone_after(store: Store) -> None:
    async with Browser(_app(store)) as b:
        assert (await b.get("/both")).json() == ["made and shown at once"]
        assert (await b.get("/show")).json()["pairs"] == []


async def test_messages_are_not_user_keys_and_have_a_size_limit(store: Store) -> None:
    seen: dict[str, Any] = {}

    async def add(request: Request) -> PlainTextResponse:
        flash(request, "hello")
        with pytest.raises(ValueError, match="at most"):
            flash(request, "x" * (MAX_MESSAGE + 1))
        with pytest.raises(TypeError):
            flash(request, 42)  # type: ignore[arg-type]
        seen["keys"] = dict(request.session)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", add)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
    async with Browser(app) as b:
        assert (await b.get("/")).status_code == 200
    assert seen["keys"] == {}


async def test_parallel_flashes_in_process_all_land(store: Store) -> None:
    """30 requests of one browser flash at once (real store I/O interleaved on one loop)."""
    async with Browser(_app(store)) as b:
        await b.get("/flash", params={"m": "start"})
        cookie = f"{b.cookie_name}={b.value}"
        await asyncio.gather(
            *(
                b.client.get("/flash", params={"m": f"m{i}"}, headers={"cookie": cookie})
                for i in range(30)
            )
        )
        b.client.cookies.clear()
        shown = (await b.get("/show")).json()["again"]
        assert sorted(shown) == sorted(["start", *(f"m{i}" for i in range(30))])
        assert shown[0] == "start"
        assert (await b.get("/show")).json()["again"] == []


@pytest.fixture(params=["sqlite", "redis"])
def flash_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """tests/flash_app.py under uvicorn with two worker processes on a real store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flash.sqlite3'}"
    else:
        url = "redis://127.0.0.1:6379/0"
    port = free_port()
    env = {**os.environ, "SESSION_STORE": url, "SESSION_SECRET": SECRET}
    args = ["-m", "uvicorn", "tests.flash_app:app", "--port", str(port), "--workers", "2"]
    base = f"http://127.0.0.1:{port}"
    proc = serve([*args, "--log-level", "warning"], ROOT, env, tmp_path / "server.log", base)
    try:
        yield base
    finally:
        stop(proc)


def test_parallel_flashes_through_a_real_server_are_each_shown_exactly_once(
    flash_server: str,
) -> None:
    """40 requests of one browser flash at once through uvicorn's two workers; then one
    page shows all 41 messages once each, and the next page none."""
    with httpx.Client(base_url=flash_server) as first:
        assert first.get("/flash", params={"m": "start"}).status_code == 200
        cookie = first.cookies["sid"]
    tag = uuid.uuid4().hex[:6]

    def send(i: int) -> int:
        with httpx.Client(base_url=flash_server, cookies={"sid": cookie}) as c:
            return c.get("/flash", params={"m": f"{tag}-{i}"}).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(send, range(40))) == [200] * 40
    with httpx.Client(base_url=flash_server, cookies={"sid": cookie}) as c:
        shown = [m for _, m in c.get("/show").json()]
        assert len(shown) == 41 and len(set(shown)) == 41
        assert set(shown) == {"start", *(f"{tag}-{i}" for i in range(40))}
        assert c.get("/show").json() == []


def test_flashes_added_while_a_page_shows_them_are_kept_for_the_next(
    flash_server: str,
) -> None:
    """Pages that show messages run in parallel with requests adding them: every message
    is shown, none twice by pages that ran one after another, none is left behind."""
    with httpx.Client(base_url=flash_server) as first:
        first.get("/flash", params={"m": "start"})
        cookie = first.cookies["sid"]
    tag = uuid.uuid4().hex[:6]

    def add(i: int) -> list[str]:
        with httpx.Client(base_url=flash_server, cookies={"sid": cookie}) as c:
            c.get("/flash", params={"m": f"{tag}-{i}"})
        return []

    def show(_: int) -> list[str]:
        with httpx.Client(base_url=flash_server, cookies={"sid": cookie}) as c:
            return [m for _, m in c.get("/show").json()]

    jobs = [(add, i) for i in range(30)] + [(show, i) for i in range(10)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: job[0](job[1]), jobs))
    with httpx.Client(base_url=flash_server, cookies={"sid": cookie}) as c:
        results.append([m for _, m in c.get("/show").json()])
        assert c.get("/show").json() == []
    seen = {m for shown in results for m in shown}
    assert seen == {"start", *(f"{tag}-{i}" for i in range(30))}  # none lost
