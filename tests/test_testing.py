"""sessionware.testing.login_as: logging test clients in through the real middleware."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from sessionware.remember import RememberConfig
from sessionware.stores import Store
from sessionware.testing import login_as
from sessionware.tokens import store_key
from tests.test_auth_support import BASE, STORES, Clock, client, make_app, open_store, series_keys

with warnings.catch_warnings():
    # Starlette now prefers httpx2 under its TestClient and warns when it runs on httpx;
    # the helper must work with the TestClient users have, whichever it is.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.anyio


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each real store in turn."""
    async with open_store(request.param, tmp_path) as s:
        yield s


async def test_login_as_async_client(store: Store) -> None:
    """An AsyncClient is logged in with a real session in the app's store and index."""
    app = make_app(store, Clock(), remember=RememberConfig(grace=0))
    async with client(app) as c:
        await c.get("/put", params={"cart": "1"})
        await login_as(c, "alice")
        body = (await c.get("/me")).json()
        assert body == {"user": "alice", "fresh": True, "data": {"cart": "1"}, "remembered": False}
        key = store_key(c.cookies["__Host-sid"].rsplit(".", 1)[0])
        assert await store.keys_of("alice") == [key]
        assert "__Host-remember" not in c.cookies


async def test_login_as_with_remember(store: Store) -> None:
    """remember=True also issues a remember-me series through the app's middleware."""
    app = make_app(store, Clock(), remember=RememberConfig(grace=0))
    async with client(app) as c:
        await login_as(c, "alice", remember=True)
        assert "__Host-remember" in c.cookies
        assert len(await series_keys(store, "alice")) == 1


def test_login_as_test_client() -> None:
    """A Starlette TestClient is logged in synchronously, after the app has started."""
    import asyncio

    from sessionware.stores import MemoryStore

    app = make_app(MemoryStore(development=True), Clock())
    with TestClient(app, base_url=BASE) as c:
        assert c.get("/me").json()["user"] is None
        login_as(c, "bob")
        assert c.get("/me").json()["user"] == "bob"
        assert c.get("/devices").status_code == 200
    assert asyncio.iscoroutinefunction(login_as) is False


def test_login_as_needs_session_middleware() -> None:
    """An app without SessionMiddleware gets a clear error, not a fake cookie."""
    c = TestClient(Starlette(), base_url=BASE)
    with pytest.raises(LookupError, match="SessionMiddleware"):
        login_as(c, "alice")
    c.close()


def test_remember_needs_remember_middleware() -> None:
    """login_as(remember=True) on an app without RememberMeMiddleware says what is missing."""
    from sessionware.stores import MemoryStore

    app = make_app(MemoryStore(development=True), Clock())
    with TestClient(app, base_url=BASE) as c, pytest.raises(LookupError, match="RememberMe"):
        login_as(c, "alice", remember=True)
