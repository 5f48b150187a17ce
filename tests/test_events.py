"""Security events: each flow emits its event with user, handle, client and reason, never
a session id, token or store key; handlers may be sync or async and never break a
request; every event is logged on ``sessionware.security``; on the real stores."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionware import SessionConfig, SessionMiddleware
from sessionware.csrf import CSRFMiddleware
from sessionware.events import EVENT_NAMES, Event, Events
from sessionware.exceptions import ConfigurationError
from sessionware.remember import RememberConfig
from sessionware.signing import Signer
from sessionware.stores import Store
from sessionware.throttle import LoginThrottle
from sessionware.tokens import store_key
from tests.test_auth_support import SECRET, Clock, client, make_app

pytestmark = pytest.mark.anyio

SID = "__Host-sid"
REM = "__Host-remember"
IDLE = 1800
HEADERS = {"x-forwarded-for": "203.0.113.9"}


class Recorder:
    """Subscribes to every event and keeps them."""

    def __init__(self) -> None:
        self.events = Events()
        self.seen: list[Event] = []
        self.events.subscribe("*", self.seen.append)

    def names(self) -> list[str]:
        return [e.name for e in self.seen]

    def of(self, name: str) -> list[Event]:
        return [e for e in self.seen if e.name == name]


def secrets_in(cookies: dict[str, str]) -> list[str]:
    """Every secret form a cookie jar holds: cookie values, raw ids, store keys, tokens."""
    out: list[str] = []
    for name, value in cookies.items():
        out.append(value)
        if name == SID:
            raw = Signer([SECRET], salt="session").unsign(value)
            out += [raw, store_key(raw), store_key(raw)[:8]]
        if name == REM:
            token = Signer([SECRET], salt="remember").unsign(value)
            out += token.split(":")
    return [s for s in out if s]


def assert_clean(events: list[Event], secrets: list[str]) -> None:
    """No event field holds any of ``secrets``."""
    for event in events:
        for value in (event.user_id, event.handle, event.client, event.reason):
            for secret in secrets:
                assert value is None or secret not in value, (event.name, secret)


async def test_login_logout_and_lifecycle_events(store: Store, clock: Clock) -> None:
    """login, session_created, logout and session_destroyed carry user, handle and client,
    and no field holds the session id, its store key or the remember-me token."""
    rec = Recorder()
    app = make_app(store, clock, remember=RememberConfig(grace=0), trust_proxy=1, events=rec.events)
    seen: list[str] = []
    async with client(app, headers=HEADERS) as c:
        await c.get("/put", params={"cart": "1"})
        seen += secrets_in(dict(c.cookies))
        await c.post("/login", json={"user": "alice", "remember": True})
        seen += secrets_in(dict(c.cookies))
        handle = (await c.get("/devices")).json()[0]["handle"]
        await c.post("/logout")
    assert rec.names() == [
        "session_created",  # the cart's anonymous session
        "session_created",  # moved to a new id at login
        "login",
        "session_destroyed",
        "logout",
    ]
    (login,) = rec.of("login")
    assert (login.user_id, login.handle, login.client, login.reason) == (
        "alice",
        handle,
        "203.0.113.9",
        "remember",
    )
    assert rec.of("logout")[0].handle == handle and rec.of("logout")[0].user_id == "alice"
    assert rec.of("session_created")[0].user_id is None  # anonymous
    assert rec.of("session_created")[1].user_id == "alice"
    assert [e.reason for e in rec.of("session_created")] == ["new", "new id"]
    assert len(seen) >= 6
    assert_clean(rec.seen, seen)


async def test_throttle_emits_login_failed_and_throttled(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password is a login_failed, a lockout a throttled: both events and both
    logged on sessionware.security with the client address."""
    rec = Recorder()
    throttle = LoginThrottle(max_attempts=2, clock=clock)
    app = make_app(store, clock, throttle=throttle, trust_proxy=1, events=rec.events)
    with caplog.at_level(logging.INFO, logger="sessionware.security"):
        async with client(app, headers=HEADERS) as c:
            codes = [
                (await c.post("/login", json={"user": "Bob", "password": "no"})).status_code
                for _ in range(3)
            ]
    assert codes == [401, 401, 429]
    failed, throttled = rec.of("login_failed"), rec.of("throttled")
    assert [(e.user_id, e.client) for e in failed] == [("bob", "203.0.113.9")] * 2
    assert len(throttled) == 1 and throttled[0].client == "203.0.113.9"
    assert throttled[0].reason is not None and "locked out" in throttled[0].reason
    lines = [r.getMessage() for r in caplog.records if r.name == "sessionware.security"]
    assert sum(line.startswith("login_failed user=bob") for line in lines) == 2
    assert any(line.startswith("throttled user=bob client=203.0.113.9") for line in lines)
    assert all(r.levelno == logging.WARNING for r in caplog.records if "throttled" in r.msg)


async def test_revoke_and_password_change_events(store: Store, clock: Clock) -> None:
    """Revoking a device emits session_revoked with that device's handle; a password
    change emits session_revoked for each other device and password_changed."""
    rec = Recorder()
    app = make_app(store, clock, events=rec.events)
    async with client(app) as a, client(app) as b, client(app) as c:
        for x in (a, b, c):
            await x.post("/login", json={"user": "carol"})
        devices = (await a.get("/devices")).json()
        other = next(d["handle"] for d in devices if not d["current"])
        assert (await a.post(f"/revoke/{other}")).json() == {"found": True}
        (revoked,) = rec.of("session_revoked")
        assert (revoked.user_id, revoked.handle, revoked.reason) == ("carol", other, "revoked")
        assert (await a.post("/password")).json()["ended"] == 1
    assert [e.reason for e in rec.of("session_revoked")] == ["revoked", "password_changed"]
    (changed,) = rec.of("password_changed")
    assert changed.user_id == "carol" and changed.reason == "1 other session(s) ended"


async def test_remember_restore_and_theft_events(store: Store, clock: Clock) -> None:
    """A restore emits remember_restored; replaying a rotated token emits remember_theft."""
    rec = Recorder()
    app = make_app(store, clock, remember=RememberConfig(grace=0), events=rec.events)
    async with client(app) as owner:
        await owner.post("/login", json={"user": "dan", "remember": True})
        stolen = owner.cookies[REM]
        clock.advance(IDLE + 1)
        assert (await owner.get("/me")).json()["user"] == "dan"
        (restored,) = rec.of("remember_restored")
        assert restored.user_id == "dan" and restored.handle is not None
        await owner.get("/me")
        clock.advance(1)
        async with client(app, cookies={REM: stolen}) as thief:
            assert (await thief.get("/me")).json()["user"] is None
    (theft,) = rec.of("remember_theft")
    assert theft.user_id == "dan" and theft.reason is not None
    assert "possible theft" in theft.reason
    assert_clean(rec.seen, [stolen, *stolen.split(":"), *secrets_in({REM: stolen})])


async def test_csrf_refused_event(store: Store) -> None:
    """A forged POST with a session but no token is refused and emits csrf_refused."""
    rec = Recorder()

    async def start(request: Request) -> Response:
        request.session["x"] = 1
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/start", start, methods=["GET", "POST"])])
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET], events=rec.events)
    async with client(app) as c:
        await c.get("/start")
        r = await c.post("/start", headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    (refused,) = rec.of("csrf_refused")
    assert refused.reason and refused.client == "127.0.0.1"


async def test_failing_and_async_handlers_never_break_the_request(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises is logged and the login goes on; an async handler runs on
    the loop without holding the request, and drain() waits for it."""
    events = Events()
    done: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("audit sink down")

    @events.on("login")
    async def slow(event: Event) -> None:
        await asyncio.sleep(0.05)
        done.append(event.user_id or "")

    events.subscribe("login", broken)
    app = make_app(store, clock, events=events)
    with caplog.at_level(logging.ERROR, logger="sessionware.security"):
        async with client(app) as c:
            r = await c.post("/login", json={"user": "erin"})
            assert r.status_code == 200
            assert (await c.get("/me")).json()["user"] == "erin"
    assert done == []  # the request did not wait for it
    await events.drain()
    assert done == ["erin"]
    assert any("handler for login failed" in r.getMessage() for r in caplog.records)


def test_async_handler_in_sync_code_runs_to_completion() -> None:
    """With no running loop (a WSGI worker), an async handler runs before emit returns."""
    events = Events()
    got: list[str | None] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        got.append(event.user_id)

    events.subscribe("logout", handler)
    events.emit("logout", user_id="frank")
    assert got == ["frank"]


def test_bad_configuration_fails_at_start_up() -> None:
    """Unknown event names, non-callables, a wrong events object or policy are refused."""
    with pytest.raises(ConfigurationError, match="no event is called 'logon'"):
        Events({"logon": print})
    with pytest.raises(ConfigurationError, match="function of one Event"):
        Events().subscribe("login", "audit")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"sessionware\.events\.Events"):
        SessionConfig(secrets=[SECRET], events=[print])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'oldest' or 'refuse'"):
        SessionConfig(secrets=[SECRET], max_sessions_policy="newest")  # type: ignore[arg-type]


def test_event_is_small_and_frozen() -> None:
    """An Event has exactly the public fields and cannot be changed by a handler."""
    event = Events(clock=lambda: 5.0).emit("login", user_id="u", reason="password")
    assert event == Event("login", "u", None, None, "password", 5.0)
    with pytest.raises(AttributeError):
        event.user_id = "v"  # type: ignore[misc]
    fields: Any = Event.__dataclass_fields__
    assert set(fields) == {"name", "user_id", "handle", "client", "reason", "time"}
    assert len(EVENT_NAMES) == 11


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_flask_events_sync_and_async_handlers(kind: str, tmp_path: Any) -> None:
    """The Flask extension takes SESSIONWARE_EVENTS: a login, a refused second device, a
    failed attempt and a registration lockout reach a plain and an async handler, both
    run before the response (no loop under WSGI)."""
    from flask import Flask, request

    from sessionware.flask import Sessionware, UserMixin, current_view, login_user
    from sessionware.throttle import RegistrationThrottle
    from tests.test_auth_support import sync_store

    rec = Recorder()
    later: list[str] = []

    async def async_handler(event: Event) -> None:
        await asyncio.sleep(0)
        later.append(event.name)

    rec.events.subscribe("*", async_handler)
    throttle = LoginThrottle(max_attempts=5)
    signup = RegistrationThrottle(max_attempts=1)

    class User(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    with sync_store(kind, tmp_path) as store:
        app = Flask(__name__)
        app.config.update(
            SECRET_KEY=SECRET,
            SESSIONWARE_COOKIE_NAME="sid",
            SESSIONWARE_SECURE=False,
            SESSIONWARE_EVENTS=rec.events,
            SESSIONWARE_MAX_SESSIONS_PER_USER=1,
            SESSIONWARE_MAX_SESSIONS_POLICY="refuse",
            TESTING=True,
        )
        sw = Sessionware(app, store=store, csrf=False)
        sw.user_loader(User)

        @app.post("/login")
        def do_login() -> str:
            name = request.form["name"]
            with throttle.sync.attempt(current_view(), name) as attempt:
                if request.form["password"] != "right":
                    attempt.failed()
                    return "no"
                attempt.succeeded()
            login_user(User(name))
            return "ok"

        @app.post("/register")
        def register() -> str:
            signup.sync.check(current_view())
            return "registered"

        one, two = app.test_client(), app.test_client()
        assert one.post("/login", data={"name": "gil", "password": "right"}).status_code == 200
        assert two.post("/login", data={"name": "gil", "password": "x"}).text == "no"
        refused = two.post("/login", data={"name": "gil", "password": "right"})
        assert refused.status_code == 409
        assert one.post("/register").status_code == 200
        assert one.post("/register").status_code == 429
    names = rec.names()
    assert [n for n in names if n not in ("session_created", "session_destroyed")] == [
        "login",
        "login_failed",
        "login_failed",
        "throttled",
    ]
    assert [e.reason for e in rec.of("login_failed")] == ["bad credentials", "session_cap"]
    assert rec.of("throttled")[0].user_id is None
    assert later == names  # every async handler ran, in order, before its response


def test_flask_csrf_refusal_is_an_event() -> None:
    """Flask's CSRF protection reports its refusals through the same events."""
    from flask import Flask, session

    from sessionware.flask import Sessionware
    from sessionware.stores import MemoryStore

    rec = Recorder()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSIONWARE_COOKIE_NAME="sid",
        SESSIONWARE_SECURE=False,
        SESSIONWARE_EVENTS=rec.events,
        TESTING=True,
    )
    Sessionware(app, store=MemoryStore(development=True))

    @app.route("/start", methods=["GET", "POST"])
    def start() -> str:
        session["x"] = 1
        return "ok"

    c = app.test_client()
    assert c.get("/start").status_code == 200
    assert c.post("/start", headers={"Origin": "https://evil.example"}).status_code == 403
    (refused,) = rec.of("csrf_refused")
    assert refused.reason and refused.user_id is None


async def test_lifecycle_is_logged_without_subscribers(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """With no events configured the security log still records session creation and
    destruction (at DEBUG), and the login and logout (at INFO)."""
    app = make_app(store, clock)
    with caplog.at_level(logging.DEBUG, logger="sessionware.security"):
        async with client(app) as c:
            await c.post("/login", json={"user": "hal"})
            await c.post("/logout")
    lines = [r.getMessage().split(" ")[0] for r in caplog.records if r.name.endswith("security")]
    assert lines == ["session_created", "login", "session_destroyed", "logout"]
