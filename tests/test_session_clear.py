"""``session.clear()`` ends the session as a logout does: record, user index entry,
remember-me series and cookie, on every real store; an emptied session never lingers."""

from __future__ import annotations

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sessionware.auth import current_user_id
from sessionware.remember import RememberConfig
from sessionware.stores import Store
from sessionware.tokens import store_key
from tests.helpers import raw_id
from tests.test_auth_support import SECRET, Clock, client, make_app, series_keys, set_cookies

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"


async def clear(request: Request) -> Response:
    """The logout most Starlette apps write."""
    request.session.clear()
    return JSONResponse({"user": current_user_id(request)})


async def clear_then_set(request: Request) -> Response:
    request.session.clear()
    request.session["flash"] = "bye"
    return JSONResponse({"ok": True})


def app_with_clear(store: Store, clock: Clock, **kwargs: object) -> object:
    app = make_app(store, clock, **kwargs)  # type: ignore[arg-type]
    app.router.add_route("/clear", clear, methods=["POST"])
    app.router.add_route("/clear-then-set", clear_then_set, methods=["POST"])
    return app


def key_of(cookie: str) -> str:
    return store_key(raw_id(cookie, [SECRET]))


async def test_clear_ends_a_login_like_logout(store: Store, clock: Clock) -> None:
    """After login, clear() deletes the record, unlinks it from the user, revokes the
    remember-me series and clears the cookie; the old cookie is anonymous afterwards."""
    app = app_with_clear(store, clock, remember=RememberConfig())
    async with client(app) as c:
        await c.post("/login", json={"user": "alice", "remember": True})
        cookie, remember = c.cookies[SID], c.cookies[REM]
        key = key_of(cookie)
        assert await store.load(key) is not None
        assert len(await series_keys(store, "alice")) == 1
        r = await c.post("/clear")
        assert r.json() == {"user": None}
        assert set_cookies(r)[SID].startswith(f"{SID}=;")
        assert await store.load(key) is None
        assert key not in await store.keys_of("alice")
        assert await series_keys(store, "alice") == []
    # Neither the old session cookie nor the remember-me cookie signs anyone back in.
    async with client(app, cookies={SID: cookie, REM: remember}) as replay:
        r = await replay.get("/me")
        assert r.json()["user"] is None
        assert set_cookies(r)[REM].startswith(f"{REM}=;")


async def test_cleared_anonymous_session_does_not_linger(store: Store, clock: Clock) -> None:
    """An anonymous session emptied by clear() is deleted, not kept empty in the store."""
    app = app_with_clear(store, clock)
    async with client(app) as c:
        await c.get("/put?a=1")
        key = key_of(c.cookies[SID])
        r = await c.post("/clear")
        assert set_cookies(r)[SID].startswith(f"{SID}=;")
        assert await store.load(key) is None


async def test_values_set_after_clear_start_a_new_session(store: Store, clock: Clock) -> None:
    """clear() then a value: the old record is gone and a new id carries the value."""
    app = app_with_clear(store, clock)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        old = c.cookies[SID]
        await c.post("/clear-then-set")
        new = c.cookies[SID]
        assert raw_id(new, [SECRET]) != raw_id(old, [SECRET])
        assert await store.load(key_of(old)) is None
        r = await c.get("/me")
        assert r.json()["user"] is None and r.json()["data"] == {"flash": "bye"}


async def test_parallel_requests_after_clear_do_not_resurrect(store: Store, clock: Clock) -> None:
    """Requests in flight with the cleared session's cookie never bring it back."""
    app = app_with_clear(store, clock)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        cookie = c.cookies[SID]
    results: list[int] = []

    async def writer(i: int) -> None:
        async with client(app, cookies={SID: cookie}) as w:
            results.append((await w.get(f"/put?k{i}=1")).status_code)

    async with client(app, cookies={SID: cookie}) as c, anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(writer, i)
        await c.post("/clear")
    async with client(app, cookies={SID: cookie}) as after:
        assert (await after.get("/me")).json()["user"] is None
    assert await store.load(key_of(cookie)) is None
    assert results == [200] * 20
