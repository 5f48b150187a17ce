"""login / logout / devices / revoke / logout_everywhere / password change / re-auth,
on the real stores (memory, SQLite, Redis on 127.0.0.1:6379)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import client_ip, login, sessions_of
from sessionware.exceptions import ConfigurationError
from sessionware.remember import RememberConfig
from sessionware.stores import Store
from sessionware.tokens import store_key
from tests.test_auth_support import (
    SECRET,
    Clock,
    HandAdapter,
    HandView,
    attributes,
    client,
    make_app,
    series_keys,
    set_cookies,
)

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"


@pytest.fixture
def app(store: Store, clock: Clock) -> Starlette:
    """The test app with remember-me (no grace window) and a trusted proxy hop."""
    return make_app(store, clock, remember=RememberConfig(grace=0), trust_proxy=1)


async def test_login_kills_the_id_set_before_it(app: Starlette, store: Store) -> None:
    """Session fixation: an id issued before login no longer works after login."""
    async with client(app) as c:
        await c.get("/put", params={"cart": "3"})
        before = c.cookies[SID]
        r = await c.post("/login", json={"user": "alice"})
        after = c.cookies[SID]
        assert SID in set_cookies(r)
        assert after != before
        assert (await c.get("/me")).json()["data"] == {"cart": "3"}  # data kept
    async with client(app, cookies={SID: before}) as planted:
        body = (await planted.get("/me")).json()
        assert body["user"] is None and body["data"] == {}


async def test_login_records_device_and_indexes_session(app: Starlette, store: Store) -> None:
    """login() stores user agent, client IP (trusted hop), auth time, and links the index."""
    headers = {"user-agent": "TestBrowser/1.0", "x-forwarded-for": "6.6.6.6, 203.0.113.7"}
    async with client(app, headers=headers) as c:
        await c.post("/login", json={"user": "alice"})
        devices = (await c.get("/devices")).json()
        key = store_key(c.cookies[SID].rsplit(".", 1)[0])
    assert devices == [
        {
            "handle": devices[0]["handle"],
            "current": True,
            "ip": "203.0.113.7",
            "ua": "TestBrowser/1.0",
            "remembered": False,
        }
    ]
    assert await store.keys_of("alice") == [key]
    listed = await sessions_of(store, "alice")
    assert listed[0].handle == devices[0]["handle"] and listed[0].current is False
    assert key not in repr(listed) and listed[0].authenticated_at is not None


async def test_logout_refuses_old_cookie_and_clears_both(app: Starlette, store: Store) -> None:
    """After logout the old cookies are refused, and both are cleared with their attributes."""
    async with client(app) as c:
        login_r = await c.post("/login", json={"user": "alice", "remember": True})
        old = dict(c.cookies)
        r = await c.post("/logout")
        cleared = set_cookies(r)
        issued = set_cookies(login_r)
        for name in (SID, REM):
            assert cleared[name].startswith(f"{name}=;")
            assert "Max-Age=0" in cleared[name]
            assert attributes(cleared[name]) == attributes(issued[name])
        assert await store.keys_of("alice") == []
        assert await series_keys(store, "alice") == []
    async with client(app, cookies=old) as replay:
        assert (await replay.get("/me")).json()["user"] is None


async def test_one_client_revokes_the_other(app: Starlette, store: Store) -> None:
    """Two browsers as one user: one lists the devices and revokes the other."""
    async with client(app, headers={"user-agent": "A"}) as a, client(
        app, headers={"user-agent": "B"}
    ) as b:
        await a.post("/login", json={"user": "alice"})
        await b.post("/login", json={"user": "alice", "remember": True})
        devices = (await a.get("/devices")).json()
        assert sorted(d["ua"] for d in devices) == ["A", "B"]
        other = next(d for d in devices if not d["current"])
        assert other["ua"] == "B"
        assert (await a.post(f"/revoke/{other['handle']}")).json() == {"found": True}
        assert (await b.get("/me")).json()["user"] is None  # remember series went with it
        assert (await a.get("/me")).json()["user"] == "alice"
        assert (await a.post("/revoke/not-a-handle")).json() == {"found": False}
        assert len((await a.get("/devices")).json()) == 1


async def test_handle_is_useless_as_a_cookie(app: Starlette, store: Store) -> None:
    """The public handle cannot be presented as a session cookie."""
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        handle = (await c.get("/devices")).json()[0]["handle"]
    async with client(app, cookies={SID: handle}) as forged:
        assert (await forged.get("/me")).json()["user"] is None


async def test_logout_everywhere_keeps_only_this_device(app: Starlette, store: Store) -> None:
    """Sign out all other devices: their sessions and remember-me series end, this one stays."""
    async with client(app) as a, client(app) as b, client(app) as c:
        await a.post("/login", json={"user": "alice", "remember": True})
        await b.post("/login", json={"user": "alice", "remember": True})
        await c.post("/login", json={"user": "alice"})
        assert (await a.post("/logout-others")).json() == {"ended": 2}
        assert (await b.get("/me")).json()["user"] is None
        assert (await c.get("/me")).json()["user"] is None
        assert (await a.get("/me")).json()["user"] == "alice"
        assert len(await series_keys(store, "alice")) == 1  # a's own series is kept


async def test_password_change_ends_others_and_rotates_current(
    app: Starlette, store: Store
) -> None:
    """password_changed: other sessions and every series end; this session gets a new id."""
    async with client(app) as a, client(app) as b:
        await a.post("/login", json={"user": "alice", "remember": True})
        await b.post("/login", json={"user": "alice", "remember": True})
        b_cookies = dict(b.cookies)
        before = a.cookies[SID]
        r = await a.post("/password")
        assert r.json()["ended"] == 1  # b's session (its series goes too)
        assert a.cookies[SID] != before
        assert set_cookies(r)[REM].startswith(f"{REM}=;")
        assert (await a.get("/me")).json() == {
            "user": "alice",
            "fresh": True,
            "data": {},
            "remembered": False,
        }
        assert (await b.get("/me")).json()["user"] is None
        assert await series_keys(store, "alice") == []
    async with client(app, cookies={SID: before}) as old:
        assert (await old.get("/me")).json()["user"] is None
    async with client(app, cookies={REM: b_cookies[REM]}) as thief:
        assert (await thief.get("/me")).json()["user"] is None


async def test_recent_login_guard_and_reauthenticate(
    app: Starlette, store: Store, clock: Clock
) -> None:
    """requires_recent_login fails once max_age passes; reauthenticate makes it fresh again."""
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        assert (await c.get("/sensitive")).status_code == 200
        clock.advance(301)
        assert (await c.get("/sensitive")).status_code == 401
        before = c.cookies[SID]
        assert (await c.post("/reauth")).status_code == 200
        assert c.cookies[SID] != before  # re-authentication rotates the id (ASVS 7.2.4)
        assert (await c.get("/sensitive")).status_code == 200
        assert len(await store.keys_of("alice")) == 1


async def test_anonymous_guard_is_401(app: Starlette) -> None:
    """Guards answer 401 when nobody is logged in."""
    async with client(app) as c:
        assert (await c.get("/sensitive")).status_code == 401
        assert (await c.get("/devices")).status_code == 401


async def test_login_as_another_user_drops_previous_data(app: Starlette, store: Store) -> None:
    """A second login as someone else keeps none of the first user's data or index entry."""
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        await c.get("/put", params={"secret": "alice's"})
        await c.post("/login", json={"user": "bob"})
        body = (await c.get("/me")).json()
        assert body["user"] == "bob" and body["data"] == {}
        assert await store.keys_of("alice") == []
        assert len(await store.keys_of("bob")) == 1


async def test_remember_login_needs_the_middleware(store: Store, clock: Clock) -> None:
    """login(remember=True) without RememberMeMiddleware fails with a message naming the fix."""

    async def endpoint(request: Request) -> Response:
        with pytest.raises(ConfigurationError, match="RememberMeMiddleware"):
            await login(request, "alice", remember=True)
        return JSONResponse({})

    app = Starlette(routes=[Route("/", endpoint)])
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], clock=clock)
    async with client(app) as c:
        assert (await c.get("/")).status_code == 200


def test_client_ip_trusts_only_the_configured_hops() -> None:
    """client_ip takes the n-th X-Forwarded-For entry from the right, else the socket peer."""
    forwarded = (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 3.3.3.3")
    view = HandView(None, headers=[forwarded], client="9.9.9.9")
    assert client_ip(view, 0) == "9.9.9.9"
    assert client_ip(view, 1) == "3.3.3.3"
    assert client_ip(view, 2) == "2.2.2.2"
    assert client_ip(view, 9) == "1.1.1.1"


async def test_store_level_calls_for_admins(app: Starlette, store: Store) -> None:
    """Given only the store, revoke and logout_everywhere end a user's sessions and series."""
    from sessionware.auth import logout_everywhere, revoke

    async with client(app) as a, client(app) as b:
        await a.post("/login", json={"user": "alice", "remember": True})
        await b.post("/login", json={"user": "alice", "remember": True})
        handles = [d.handle for d in await sessions_of(store, "alice")]
        assert await revoke(store, "alice", handles[0]) is True
        assert await revoke(store, "bob", handles[1]) is False  # another user's handle
        assert len(await sessions_of(store, "alice")) == 1
        assert await logout_everywhere(store, "alice") == 1
        assert await store.keys_of("alice") == [] and await series_keys(store, "alice") == []
        for c in (a, b):
            c.cookies.delete(SID)
            assert (await c.get("/me")).json()["user"] is None


def test_public_names() -> None:
    """The public names of the auth modules are pinned."""
    from sessionware import auth, passwords, remember, throttle

    assert set(auth.__all__) >= {
        "login",
        "logout",
        "logout_everywhere",
        "sessions_of",
        "revoke",
        "password_changed",
        "requires_recent_login",
        "reauthenticate",
        "current_user_id",
    }
    assert passwords.__all__ == [
        "HasherBusyError",
        "PasswordHasher",
        "PasswordPolicy",
        "WeakPasswordError",
        "common_passwords",
    ]
    assert "RememberMeMiddleware" in remember.__all__ and "RememberConfig" in remember.__all__
    assert throttle.__all__ == [
        "Attempt",
        "LoginThrottle",
        "RegistrationThrottle",
        "TooManyAttemptsError",
        "too_many_attempts",
    ]


async def test_remembered_device_without_a_session_is_listed_and_revocable(
    app: Starlette, store: Store
) -> None:
    """A browser whose session ended but whose remember-me cookie lives is a device to revoke."""
    async with client(app, headers={"user-agent": "A"}) as a, client(
        app, headers={"user-agent": "B"}
    ) as b:
        await a.post("/login", json={"user": "alice"})
        await b.post("/login", json={"user": "alice", "remember": True})
        b_key = store_key(b.cookies[SID].rsplit(".", 1)[0])
        await store.delete(b_key)  # B's session ends (idle timeout), its series does not
        listed = await sessions_of(store, "alice")
        idle = [d for d in listed if not d.session_active]
        assert len(listed) == 2 and len(idle) == 1
        assert idle[0].remembered and idle[0].user_agent == "B" and idle[0].handle
        assert (await a.post(f"/revoke/{idle[0].handle}")).json() == {"found": True}
        assert await series_keys(store, "alice") == []
        b.cookies.delete(SID)
        assert (await b.get("/me")).json()["user"] is None  # the cookie no longer signs in
        assert [d.session_active for d in await sessions_of(store, "alice")] == [True]


async def test_current_handle_names_this_device_in_the_list(app: Starlette, store: Store) -> None:
    """current_handle(request) is the handle sessions_of marks as current, and not a cookie."""
    from sessionware.auth import current_handle

    async def handle(request: Request) -> JSONResponse:
        return JSONResponse({"handle": current_handle(request)})

    app.router.routes.append(Route("/handle", handle))
    async with client(app) as c:
        assert (await c.get("/handle")).json() == {"handle": None}  # nobody logged in
        await c.post("/login", json={"user": "alice"})
        mine = (await c.get("/handle")).json()["handle"]
        devices = (await c.get("/devices")).json()
        assert [d["handle"] for d in devices if d["current"]] == [mine]
        assert mine not in c.cookies[SID]


# -- no framework: a RequestView written by hand -------------------------------------


async def test_login_and_logout_on_a_hand_made_view(store: Store, clock: Clock) -> None:
    """login / current_user_id / sessions_of / logout work on a plain RequestView over a
    real store, with no framework request, app or middleware anywhere."""
    from sessionware.auth import (
        LoginRequiredError,
        current_user_id,
        is_recent_login,
        logout,
        require_user,
    )

    browser = HandAdapter(store, clock, trust_proxy=1)
    device = [(b"user-agent", b"HandBrowser/1.0"), (b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]
    first = await browser.request(device)
    first.session["cart"] = "3"
    await browser.respond(first)
    before = browser.jar[SID]

    view = await browser.request(device)
    await login(view, "alice")
    assert current_user_id(view) == "alice" and is_recent_login(view, 300)
    sent = await browser.respond(view)
    assert [c.split("=", 1)[0] for c in sent] == [SID]
    assert browser.jar[SID] != before  # a new id at login (session fixation)
    [device_session] = await sessions_of(store, "alice")
    assert (device_session.ip, device_session.user_agent) == ("203.0.113.7", "HandBrowser/1.0")

    view = await browser.request(device)
    assert require_user(view) == "alice" and view.session["cart"] == "3"
    assert [d.current for d in await sessions_of(view, "alice")] == [True]
    await logout(view)
    sent = await browser.respond(view)
    assert sent[0].startswith(f"{SID}=;") and "Max-Age=0" in sent[0]
    assert await store.keys_of("alice") == []

    view = await browser.request(device)
    assert current_user_id(view) is None
    with pytest.raises(LoginRequiredError) as refused:
        require_user(view)
    assert refused.value.status_code == 401


async def test_sweeps_on_a_hand_made_view(store: Store, clock: Clock) -> None:
    """revoke, logout_everywhere(keep=view) and password_changed take a hand-made view."""
    from sessionware.auth import current_user_id, logout_everywhere, password_changed, revoke

    phone, laptop, tablet = (HandAdapter(store, clock) for _ in range(3))
    for browser in (phone, laptop, tablet):
        view = await browser.request()
        await login(view, "alice")
        await browser.respond(view)

    view = await laptop.request()
    other = next(d for d in await sessions_of(view, "alice") if not d.current)
    assert await revoke(view, "alice", other.handle) is True
    await laptop.respond(view)
    view = await laptop.request()
    assert await logout_everywhere(view, "alice", keep=view) == 1
    await laptop.respond(view)
    for browser in (phone, tablet):
        assert current_user_id(await browser.request()) is None

    view = await laptop.request()
    before = laptop.jar[SID]
    assert await password_changed(view, "alice") == 0
    await laptop.respond(view)
    assert laptop.jar[SID] != before
    assert current_user_id(await laptop.request()) == "alice"


async def test_auth_without_a_session_names_the_fix() -> None:
    """A request no adapter has seen gets a ConfigurationError that says what is missing."""
    from sessionware.auth import current_user_id

    with pytest.raises(ConfigurationError, match="session middleware"):
        current_user_id(object())
    with pytest.raises(ConfigurationError, match="session middleware"):
        await login({"headers": []}, "alice")


def test_errors_are_sessionwares_own() -> None:
    """The 401s and the 429 are sessionware's HTTPError, no framework's exception, with
    the status, detail and headers the apps answered before; one class per name."""
    from starlette.exceptions import HTTPException

    from sessionware import auth, exceptions, throttle

    for exc, status, detail, headers in [
        (auth.LoginRequiredError(), 401, "Not authenticated", {}),
        (auth.ReauthenticationRequiredError(), 401, "Please confirm your password", {}),
        (throttle.TooManyAttemptsError(7), 429, "Too many attempts. Try again later.",
         {"Retry-After": "7"}),
    ]:
        assert isinstance(exc, exceptions.HTTPError)
        assert isinstance(exc, exceptions.SessionwareError)
        assert not isinstance(exc, HTTPException)
        assert (exc.status_code, exc.detail, exc.headers) == (status, detail, headers)
    assert auth.LoginRequiredError is exceptions.LoginRequiredError
    assert auth.ReauthenticationRequiredError is exceptions.ReauthenticationRequiredError
    assert throttle.TooManyAttemptsError is exceptions.TooManyAttemptsError


async def test_guards_answer_their_status_in_a_plain_starlette_app(
    app: Starlette, store: Store
) -> None:
    """With no exception handler of the app's, the 401 of a guard is answered as before:
    plain text, the status and the detail."""
    async with client(app) as c:
        r = await c.get("/sensitive")
    assert (r.status_code, r.text) == (401, "Not authenticated")
    assert r.headers["content-type"].startswith("text/plain")


async def test_a_damaged_session_of_the_user_is_listed_not_a_500(
    app: Starlette, store: Store
) -> None:
    """A session record of the user whose times do not read is still a device on the
    list (with no times), never a 500 on the devices page (found by record fuzzing)."""
    key = store_key("x" * 43)
    await store.create(key, {"uid": "alice", "c": "abc", "a": "nan", "hdl": "h" * 20}, 600)
    await store.link("alice", key)
    async with client(app) as c:
        await c.post("/login", json={"user": "alice"})
        listed = await c.get("/devices")
    assert listed.status_code == 200
    assert len(listed.json()) == 2
