"""A Redis that answers reads but refuses writes (out of memory, no replica to write
to) is an outage for the requests that must write: 503 with the log line, also when
the write is the handler's own call (a login's regenerate, a logout), never a 500.
Reads keep working, and writes work again once Redis accepts them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.stores import RedisStore
from tests.helpers import SECRET
from tests.stores.redis_apps import SessionApp
from tests.stores.redis_servers import RedisServer, running_server

pytestmark = pytest.mark.anyio

REFUSALS = {
    "no replicas": (("min-replicas-to-write", "1"), ("min-replicas-to-write", "0")),
    "out of memory": (("maxmemory", "1"), ("maxmemory", "0")),
}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with running_server() as s:
        yield s


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(server.url)
    yield s
    await s.close()


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_refused_writes_are_503s_and_reads_go_on(
    server: RedisServer, store: RedisStore, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sessionware")
    on, off = REFUSALS[refusal]
    app = SessionApp(store)
    transport = httpx.ASGITransport(app=app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200
        jar = {"cookie": f"sid={client.cookies['sid']}"}
        client.cookies.clear()  # the one cookie, sent by hand: a 503 sets none
        assert server.send("CONFIG", "SET", *on).startswith(b"+OK")
        try:
            assert (await client.get("/get", headers=jar)).json() == {
                "user_id": "42"
            }  # reads go on
            # A write, and the handler's own store call (a login's regenerate). A logout
            # is a delete, which Redis allows even out of memory: it frees some.
            for path in ("/set/k", "/login"):
                answer = await client.post(path, headers=jar)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"] == "5"
            assert any("store unavailable" in r.getMessage() for r in caplog.records)
        finally:
            assert server.send("CONFIG", "SET", *off).startswith(b"+OK")
        assert (await client.post("/set/k", params={"v": "2"}, headers=jar)).status_code == 200
        answer = await client.get("/get", headers=jar)
        assert answer.json() == {"user_id": "42", "k": "2"}


async def test_a_login_refused_by_redis_is_a_503_in_an_app_built_with_add_middleware(
    server: RedisServer, store: RedisStore
) -> None:
    """Here Starlette's error middleware sits outside SessionMiddleware: the handler's
    StoreUnavailableError passes through it, and it answers the 503."""

    async def login(request: Request) -> PlainTextResponse:
        await request.session.regenerate()
        request.session["user_id"] = "42"
        return PlainTextResponse("in")

    app = Starlette(routes=[Route("/login", login, methods=["POST"])])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], cookie_name="sid")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/login")).status_code == 200
        jar = {"cookie": f"sid={client.cookies['sid']}"}
        client.cookies.clear()
        assert server.send("CONFIG", "SET", "min-replicas-to-write", "1").startswith(b"+OK")
        try:
            assert (await client.post("/login", headers=jar)).status_code == 503
        finally:
            assert server.send("CONFIG", "SET", "min-replicas-to-write", "0").startswith(b"+OK")
        assert (await client.post("/login", headers=jar)).status_code == 200
