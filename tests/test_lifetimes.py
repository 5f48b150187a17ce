"""Per-login lifetimes (``login(..., idle_timeout=, absolute_timeout=, cookie_max_age=)``,
``session.set_lifetime``), enforced by the server on every real store, through the
README's example app (examples/lifetimes_app.py)."""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from flask import Flask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionware import SessionConfig
from sessionware.auth import login
from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError
from sessionware.flask import Sessionware
from sessionware.flask.login import UserMixin, current_user, login_user
from sessionware.remember import RememberConfig
from sessionware.stores import MemoryStore, Store
from sessionware.tokens import store_key
from tests.helpers import SECRET, Browser, raw_id, set_cookies
from tests.test_auth_support import REDIS_URL, Clock, client, make_app, open_store

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lifetimes_app.py"


def build(store: Store, clock: Clock) -> Any:
    """The README example app on ``store``, with a clock the test moves."""
    mod = runpy.run_path(str(EXAMPLE), run_name="lifetimes_example", init_globals=None)
    return mod["build"](store, SECRET, clock)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The example's module level builds its own app from the environment.
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_STORE", "memory://")


async def _login(b: Browser, **form: Any) -> None:
    r = await b.client.post("/login", json=form)
    assert r.status_code == 200, r.text
    for header in set_cookies(r):
        if header.startswith("__Host-sid="):
            b.value = header.split(";")[0].split("=", 1)[1]
    assert b.value


async def test_admin_login_idle_timeout_is_enforced_on_the_server(
    store: Store, clock: Clock
) -> None:
    """A cookie replayed after the admin login's 5 idle minutes is no session, though the
    global idle timeout (30 minutes) would still allow it."""
    async with Browser(build(store, clock)) as b:
        await _login(b, username="admin")
        stolen = f"__Host-sid={b.value}"
        clock.advance(4 * 60)
        assert (await b.get("/me")).json()["user"] == "admin"  # activity keeps it alive
        clock.advance(4 * 60 + 50)
        assert (await b.get("/me")).json()["user"] == "admin"
        clock.advance(5 * 60 + 1)
        assert (await b.get("/me")).status_code == 401
        assert (await b.get("/me", cookie=stolen)).status_code == 401


async def test_admin_login_absolute_timeout_ends_it_despite_activity(
    store: Store, clock: Clock
) -> None:
    """An active admin login ends one hour after it began (the global absolute is 12 h)."""
    async with Browser(build(store, clock)) as b:
        await _login(b, username="admin")
        for _ in range(14):
            clock.advance(4 * 60)
            assert (await b.get("/me")).status_code == 200  # 56 minutes in
        clock.advance(4 * 60)
        assert (await b.get("/me")).status_code == 401


async def test_keep_me_signed_in_outlives_the_global_idle_timeout(
    store: Store, clock: Clock
) -> None:
    """A "keep me signed in" login survives 2 idle hours, sends a 30-day cookie, and still
    ends after its own week of idleness."""
    async with Browser(build(store, clock)) as b:
        r = await b.client.post("/login", json={"username": "ada", "keep_me_signed_in": True})
        cookie = next(h for h in set_cookies(r) if h.startswith("__Host-sid="))
        assert "Max-Age=2592000" in cookie
        b.value = cookie.split(";")[0].split("=", 1)[1]
        clock.advance(2 * 3600)
        r = await b.get("/me")
        assert r.json()["user"] == "ada"
        clock.advance(6 * 86400)
        assert (await b.get("/me")).json()["user"] == "ada"
        clock.advance(7 * 86400 + 1)
        assert (await b.get("/me")).status_code == 401


async def test_plain_login_keeps_the_global_timeouts(store: Store, clock: Clock) -> None:
    """A login without lifetimes ends after the global 30 idle minutes, with no Max-Age."""
    async with Browser(build(store, clock)) as b:
        r = await b.client.post("/login", json={"username": "ada"})
        cookie = next(h for h in set_cookies(r) if h.startswith("__Host-sid="))
        assert "Max-Age" not in cookie
        b.value = cookie.split(";")[0].split("=", 1)[1]
        clock.advance(29 * 60)
        assert (await b.get("/me")).status_code == 200
        clock.advance(30 * 60 + 1)
        assert (await b.get("/me")).status_code == 401


async def test_a_new_login_replaces_the_previous_lifetime(store: Store, clock: Clock) -> None:
    """Logging in again without lifetimes after a 5-minute admin login gets the global ones."""
    async with Browser(build(store, clock)) as b:
        await _login(b, username="admin")
        await _login(b, username="ada")
        clock.advance(20 * 60)
        assert (await b.get("/me")).json()["user"] == "ada"


def test_the_store_ttl_follows_the_login() -> None:
    """The record's store TTL is the per-login one: an admin record expires in the store
    after 5 idle minutes, not 30."""
    clock = Clock(1_000_000.0)
    core = SessionCore(SessionConfig(secrets=[SECRET], clock=clock), MemoryStore(development=True))
    now = clock()
    assert core.ttl(now, now) == 30 * 60
    assert core.ttl(now - 100, now, f"300||{int(now)}|") == 300
    assert core.ttl(now - 100, now, f"|3600|{int(now) - 3500}|") == 100
    assert core.ttl(now, now, "damaged") == 30 * 60  # a damaged field: the global ones


async def test_set_lifetime_refuses_more_than_max_lifetime(clock: Clock) -> None:
    """A per-session lifetime past max_lifetime is refused with the fix in the message."""
    core = SessionCore(
        SessionConfig(secrets=[SECRET], clock=clock, max_lifetime=timedelta(days=1)),
        MemoryStore(development=True),
    )
    session, _ = core.open(None, None, clock())
    with pytest.raises(ValueError, match="max_lifetime"):
        session.set_lifetime(absolute=timedelta(days=2))
    with pytest.raises(ConfigurationError):
        session.set_lifetime(idle=-1)
    session.set_lifetime(idle=60)
    assert session.lifetime == f"60||{int(clock())}|"


def test_bad_lifetime_and_rotation_settings_fail_at_start_up() -> None:
    """max_lifetime beyond 400 days, forever, or a rotation too frequent for its grace
    window is a configuration error saying the fix."""
    with pytest.raises(ConfigurationError, match="400 days"):
        SessionConfig(secrets=[SECRET], max_lifetime=timedelta(days=500))
    with pytest.raises(ConfigurationError, match="max_lifetime=None"):
        SessionConfig(secrets=[SECRET], max_lifetime=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="rotate_every"):
        SessionConfig(secrets=[SECRET], rotate_every=10)
    with pytest.raises(ConfigurationError, match="rotate_every"):
        SessionConfig(secrets=[SECRET], rotate_every=100, rotate_grace=60)
    with pytest.raises(ConfigurationError, match="rotate_grace"):
        SessionConfig(secrets=[SECRET], rotate_every=3600, rotate_grace=600)
    cfg = SessionConfig(secrets=[SECRET], rotate_every=timedelta(minutes=15))
    assert cfg.rotate_every == 900.0


async def test_flask_login_user_takes_the_login_lifetimes(store: Store, clock: Clock) -> None:
    """Flask's login_user(idle_timeout=..., cookie_max_age=...) is enforced by the server on
    the sync adapter: the cookie carries the Max-Age, the session ends after 5 idle minutes."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid")
    sw = Sessionware(app, store=store, csrf=False)
    sw.core.clock = clock

    class User(UserMixin):
        id = "7"

    sw.user_loader(lambda user_id: User() if user_id == "7" else None)

    @app.post("/login")
    def sign_in() -> str:
        login_user(User(), idle_timeout=300, cookie_max_age=timedelta(days=1))
        return "in"

    @app.get("/me")
    def me() -> str:
        return "yes" if current_user.is_authenticated else "no"

    c = app.test_client(use_cookies=False)
    r = c.post("/login")
    header = r.headers["set-cookie"]
    assert "Max-Age=86400" in header
    jar = {"cookie": header.split(";")[0]}
    clock.advance(299)
    assert c.get("/me", headers=jar).text == "yes"
    clock.advance(301)
    assert c.get("/me", headers=jar).text == "no"


async def test_redis_expires_the_record_with_the_login_lifetime(
    tmp_path: Path, clock: Clock
) -> None:
    """The admin login's record carries a 5-minute TTL in Redis (not the global 30), so
    Redis drops it by itself when the server would refuse it."""
    async with open_store("redis", tmp_path) as store, Browser(build(store, clock)) as b:
        await _login(b, username="admin")
        assert b.value is not None
        key = store.record_key(store_key(raw_id(b.value)))  # type: ignore[attr-defined]
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            ttl = await client.pttl(key)
        finally:
            await client.aclose()
        assert 290_000 < ttl <= 300_000


async def test_a_remember_me_restore_gets_the_global_lifetimes(store: Store, clock: Clock) -> None:
    """A 5-minute login with remember-me: once it idles out, remember-me restores a session
    that lives by the global timeouts (29 idle minutes later it is the same session)."""
    app = make_app(store, clock, remember=RememberConfig(grace=0))

    async def short_login(request: Request) -> Response:
        await login(request, "alice", remember=True, idle_timeout=300)
        return JSONResponse({"ok": True})

    app.router.routes.append(Route("/short-login", short_login, methods=["POST"]))
    async with client(app) as c:
        await c.post("/short-login")
        first = c.cookies["__Host-sid"]
        clock.advance(301)
        r = await c.get("/me")
        assert r.json()["user"] == "alice" and r.json()["remembered"] is True
        restored = c.cookies["__Host-sid"]
        assert restored != first
        clock.advance(29 * 60)
        assert (await c.get("/me")).json()["user"] == "alice"
        assert c.cookies["__Host-sid"] == restored  # no second restore: still alive
