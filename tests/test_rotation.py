"""Periodic id rotation (``rotate_every`` / ``rotate_grace``) in process, on every real
store: one new id, same data and login, the old id forwarded for the grace window,
writes under the old id landing on the new record, revocation still final; and the
same on Flask's sync adapter."""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware.auth import logout_everywhere, sessions_of
from sessionware.flask import Sessionware
from sessionware.stores import MemoryStore, Store
from sessionware.tokens import store_key
from tests.helpers import SECRET, Browser, raw_id, session_app, set_cookies
from tests.test_auth_support import Clock

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lifetimes_app.py"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_STORE", "memory://")


def build(store: Store, clock: Clock) -> Any:
    """The README example (rotate_every=15 min, rotate_grace=30 s) on ``store``."""
    return runpy.run_path(str(EXAMPLE), run_name="lifetimes_example")["build"](store, SECRET, clock)


def _sid(response: Any) -> str | None:
    for header in set_cookies(response):
        if header.startswith("__Host-sid="):
            return header.split(";")[0].split("=", 1)[1]
    return None


async def test_a_session_in_use_gets_a_new_id_after_rotate_every(
    store: Store, clock: Clock
) -> None:
    """Past 15 minutes, the next request hands out a new id with the same login and data;
    before that no request sends a cookie."""
    async with Browser(build(store, clock)) as b:
        r = await b.client.post("/login", json={"username": "ada"})
        b.value = old = _sid(r)
        await b.client.post("/me", headers={"cookie": f"__Host-sid={old}"})
        for _ in range(2):
            clock.advance(7 * 60)
            r = await b.get("/me")
            assert _sid(r) is None
        clock.advance(60)
        r = await b.get("/me")
        new = _sid(r)
        assert new is not None and new != old
        assert r.json() == {"user": "ada", "clicks": 1}
        assert "no-store" in r.headers["cache-control"]
        r = await b.get("/me")
        assert r.json() == {"user": "ada", "clicks": 1} and _sid(r) is None
        # The user index follows: one session, under the new key.
        devices = await sessions_of(store, "ada")
        assert len(devices) == 1
        assert old is not None
        assert await store.load(store_key(raw_id(old))) is None
        assert await store.load(store_key(raw_id(new))) is not None


async def test_the_old_id_works_in_the_grace_window_and_its_writes_land(
    store: Store, clock: Clock
) -> None:
    """A request with the old cookie just after rotation is still signed in, sees the
    current data, gets no cookie (it would undo the rotation), and its write reaches the
    new record."""
    async with Browser(build(store, clock)) as b:
        b.value = old = _sid(await b.client.post("/login", json={"username": "ada"}))
        clock.advance(16 * 60)
        r = await b.client.post("/me", headers={"cookie": f"__Host-sid={old}"})
        new = _sid(r)
        assert new and r.json()["clicks"] == 1
        r = await b.client.post("/me", headers={"cookie": f"__Host-sid={old}"})
        assert r.status_code == 200 and r.json()["clicks"] == 2
        assert set_cookies(r) == []
        r = await b.client.get("/me", headers={"cookie": f"__Host-sid={new}"})
        assert r.json()["clicks"] == 2


async def test_logout_after_rotation_ends_the_old_id_too(store: Store, clock: Clock) -> None:
    """Logging out with the new id leaves the old one (still in its grace window) dead."""
    async with Browser(build(store, clock)) as b:
        old = _sid(await b.client.post("/login", json={"username": "ada"}))
        clock.advance(16 * 60)
        new = _sid(await b.client.get("/me", headers={"cookie": f"__Host-sid={old}"}))
        assert new
        r = await b.client.post("/logout", headers={"cookie": f"__Host-sid={new}"})
        assert r.status_code == 200
        for sid in (old, new):
            r = await b.client.get("/me", headers={"cookie": f"__Host-sid={sid}"})
            assert r.status_code == 401


async def test_signing_out_everywhere_after_rotation_ends_both_ids(
    store: Store, clock: Clock
) -> None:
    """logout_everywhere finds the rotated session through the user index: neither id works."""
    async with Browser(build(store, clock)) as b:
        old = _sid(await b.client.post("/login", json={"username": "ada"}))
        clock.advance(16 * 60)
        new = _sid(await b.client.get("/me", headers={"cookie": f"__Host-sid={old}"}))
        assert new
        assert await logout_everywhere(store, "ada") == 1
        for sid in (old, new):
            r = await b.client.get("/me", headers={"cookie": f"__Host-sid={sid}"})
            assert r.status_code == 401


def test_flask_rotates_the_id_too(clock: Clock) -> None:
    """Flask's sync adapter rotates on the same core: new cookie, same data, old one
    forwarded in the grace window."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSIONWARE_COOKIE_NAME="sid",
        SESSIONWARE_ROTATE_EVERY=600,
        SESSIONWARE_ROTATE_GRACE=30,
    )
    sw = Sessionware(app, store=MemoryStore(development=True), csrf=False)
    sw.core.clock = clock

    @app.post("/add/<name>")
    def add(name: str) -> dict[str, Any]:
        session[name] = 1
        return dict(session)

    c = app.test_client(use_cookies=False)
    r = c.post("/add/a")
    old = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    clock.advance(601)
    r = c.post("/add/b", headers={"cookie": f"sid={old}"})
    new = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert new != old and r.json == {"a": 1, "b": 1}
    r = c.post("/add/c", headers={"cookie": f"sid={old}"})
    assert r.json == {"a": 1, "b": 1, "c": 1} and "set-cookie" not in r.headers
    r = c.post("/add/d", headers={"cookie": f"sid={new}"})
    assert r.json == {"a": 1, "b": 1, "c": 1, "d": 1}


async def test_a_logout_by_clear_on_a_due_session_ends_it_instead_of_moving_it(
    store: Store, clock: Clock
) -> None:
    """session.clear() (how many apps log out) in the request that comes due for rotation
    ends the session and its index entry: no new id, no live record left."""
    app = build(store, clock)

    async def clear(request: Any) -> Any:
        request.session.clear()
        return JSONResponse({})

    app.router.routes.append(Route("/clear", clear, methods=["POST"]))
    async with Browser(app) as b:
        old = _sid(await b.client.post("/login", json={"username": "ada"}))
        clock.advance(16 * 60)
        r = await b.client.post("/clear", headers={"cookie": f"__Host-sid={old}"})
        assert _sid(r) == ""  # cleared, not replaced
        assert (
            await b.client.get("/me", headers={"cookie": f"__Host-sid={old}"})
        ).status_code == 401
        assert await sessions_of(store, "ada") == []


async def test_increment_follows_a_rotation_that_happened_mid_request(
    store: Store, clock: Clock
) -> None:
    """A request that loaded the session before a parallel request rotated it still counts
    its increment, on the new record, and sends no cookie."""
    app = build(store, clock)
    loaded = asyncio.Event()
    rotated = asyncio.Event()

    async def slow_increment(request: Any) -> Any:
        request.session.get("n")  # loaded before the rotation
        loaded.set()
        await rotated.wait()
        return JSONResponse({"n": await request.session.increment("n")})

    app.router.routes.append(Route("/slow-increment", slow_increment, methods=["POST"]))
    async with Browser(app) as b:
        old = _sid(await b.client.post("/login", json={"username": "ada"}))
        clock.advance(16 * 60)
        jar = {"cookie": f"__Host-sid={old}"}

        async def rotate() -> Any:
            await loaded.wait()
            r = await b.client.post("/me", headers=jar)
            rotated.set()
            return r

        slow, fast = await asyncio.gather(b.client.post("/slow-increment", headers=jar), rotate())
        new = _sid(fast)
        assert new and new != old
        assert slow.json() == {"n": 1} and _sid(slow) is None
        r = await b.client.get("/me", headers={"cookie": f"__Host-sid={new}"})
        assert r.json() == {"user": "ada", "clicks": 1}
        assert await store.load(store_key(raw_id(new))) is not None
        fields = await store.load(store_key(raw_id(new)))
        assert fields is not None and fields[".n"] == "1"


async def test_with_rolling_an_in_flight_request_does_not_hand_back_the_old_id(
    store: Store, clock: Clock
) -> None:
    """rolling=True sends the cookie on every response; a request that loaded the session
    before a parallel one rotated it must not send the old id back (that would undo the
    rotation and log the browser out after the grace window)."""
    app = session_app(store, rolling=True, rotate_every=60, rotate_grace=10, clock=clock)
    async with Browser(app) as b:
        await b.get("/set?x=1")
        old = b.value
        clock.advance(61)
        jar = f"__Host-sid={old}"

        async def slow() -> Any:
            return await b.get("/slow/g", cookie=jar)

        async def rotate() -> Any:
            await app.state.started.setdefault("g", asyncio.Event()).wait()
            r = await b.get("/read", cookie=jar)
            app.state.gates.setdefault("g", asyncio.Event()).set()
            return r

        late, fast = await asyncio.gather(slow(), rotate())
        new = _sid(fast)
        assert new and new != old and fast.json() == {"x": 1}
        assert late.status_code == 200 and _sid(late) is None
        r = await b.get("/read", cookie=f"__Host-sid={new}")
        assert r.json() == {"x": 1}
