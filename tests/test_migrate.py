"""Moving users of Starlette's and Flask's cookie sessions to sessionware without logging
anyone out: cookies made by the real Starlette and Flask code, real requests to apps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError
from sessionware.flask import Sessionware
from sessionware.migrate import FlaskCookie, StarletteCookie, plain
from sessionware.stores import MemoryStore, Store
from sessionware.tokens import store_key
from tests.helpers import SECRET, raw_id
from tests.test_auth_support import STORES, sync_store

OLD = "the-old-starlette-secret-key"
SID = "sid"

pytestmark = pytest.mark.anyio


# -- the old apps, on the frameworks' own cookie sessions ------------------------------


async def starlette_cookie(secret: str = OLD, **data: Any) -> str:
    """A session cookie made by Starlette's own SessionMiddleware holding ``data``."""

    async def login(request: Request) -> JSONResponse:
        request.session.update(data)
        return JSONResponse({"ok": True})

    old = Starlette(routes=[Route("/login", login)])
    old.add_middleware(StarletteSessions, secret_key=secret)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=old), base_url="http://testserver"
    ) as c:
        r = await c.get("/login")
    value = r.cookies["session"]
    assert value
    return value


def flask_cookie(secret: str = OLD, **data: Any) -> str:
    """A session cookie made by Flask's default signed-cookie session holding ``data``."""
    old = flask.Flask("old")
    old.secret_key = secret

    @old.get("/login")
    def login() -> str:
        flask.session.update(data)
        flask.session.permanent = True
        return "ok"

    with old.test_client() as c:
        c.get("/login")
        cookie = c.get_cookie("session")
    assert cookie is not None
    return cookie.value


# -- the new apps, on sessionware -------------------------------------------------------


def new_starlette(store: Store, *legacy: Any) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(request.session)

    async def put(request: Request) -> JSONResponse:
        request.session.update(dict(request.query_params))
        return JSONResponse({"ok": True})

    async def logout(request: Request) -> JSONResponse:
        request.session.clear()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/me", me), Route("/put", put), Route("/logout", logout)])
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[SECRET],
        cookie_name=SID,
        legacy_cookies=list(legacy),
    )
    return app


def client(app: Any, cookies: dict[str, str]) -> httpx.AsyncClient:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"cookie": header},
    )


def set_cookies(r: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def value_of(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


async def test_starlette_cookie_becomes_a_server_side_session(store: Store) -> None:
    """The first request with Starlette's cookie is signed in, gets a fresh sessionware id
    and has the old cookie cleared; the new cookie alone carries the login on."""
    legacy = await starlette_cookie(user="alice", cart=[1, 2])
    app = new_starlette(store, StarletteCookie(secret_key=OLD))
    async with client(app, {"session": legacy}) as c:
        r = await c.get("/me")
    assert r.json() == {"user": "alice", "cart": [1, 2]}
    sent = set_cookies(r)
    assert sent["session"].startswith("session=;") and "Max-Age=0" in sent["session"]
    new = value_of(sent[SID])
    sid = raw_id(new)
    assert sid != legacy and legacy not in new
    assert await store.load(store_key(sid)) is not None
    assert r.headers["cache-control"] == "no-store"
    async with client(app, {SID: new}) as c:
        again = await c.get("/me")
    assert again.json()["user"] == "alice" and "set-cookie" not in again.headers


@pytest.mark.parametrize("how", ["tampered", "old secret", "truncated", "not ours"])
async def test_bad_legacy_cookie_is_no_session(how: str) -> None:
    """A tampered, wrongly signed, truncated or foreign legacy cookie signs nobody in,
    creates nothing and is left alone."""
    store = MemoryStore(development=True)
    good = await starlette_cookie(user="alice")
    bad = {
        "tampered": good[:10] + ("A" if good[10] != "A" else "B") + good[11:],
        "old secret": await starlette_cookie("another-secret-entirely", user="alice"),
        "truncated": good[: len(good) // 2],
        "not ours": flask_cookie(user="alice"),
    }[how]
    app = new_starlette(store, StarletteCookie(secret_key=OLD))
    async with client(app, {"session": bad}) as c:
        r = await c.get("/me")
    assert r.json() == {}
    assert "set-cookie" not in r.headers
    assert len(store) == 0


async def test_parallel_requests_with_one_legacy_cookie_share_one_session(store: Store) -> None:
    """Thirty requests at once carrying the same old cookie all get the same new session,
    and every key each of them wrote is in it: nothing lost to duplicates."""
    legacy = await starlette_cookie(user="alice")
    app = new_starlette(store, StarletteCookie(secret_key=OLD))
    issued: set[str] = set()

    async def one(i: int) -> None:
        async with client(app, {"session": legacy}) as c:
            r = await c.get(f"/put?k{i}=v")
            assert r.status_code == 200
            issued.add(value_of(set_cookies(r)[SID]))

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(one, i)
    assert len(issued) == 1
    async with client(app, {SID: issued.pop()}) as c:
        data = (await c.get("/me")).json()
    assert data == {"user": "alice", **{f"k{i}": "v" for i in range(30)}}


async def test_legacy_cookie_is_refused_once_its_session_ended() -> None:
    """After the adopted session is logged out, a copy of the old cookie is spent."""
    store = MemoryStore(development=True)
    legacy = await starlette_cookie(user="alice")
    app = new_starlette(store, StarletteCookie(secret_key=OLD))
    async with client(app, {"session": legacy}) as c:
        new = value_of(set_cookies(await c.get("/me"))[SID])
    async with client(app, {SID: new}) as c:
        await c.get("/logout")
    async with client(app, {"session": legacy}) as replay:
        r = await replay.get("/me")
    assert r.json() == {}
    assert SID not in set_cookies(r)
    assert set_cookies(r)["session"].startswith("session=;")


async def test_same_cookie_name_is_replaced_not_cleared() -> None:
    """When sessionware takes over the old cookie's very name, one Set-Cookie replaces it."""
    legacy = await starlette_cookie(user="alice")

    async def me(request: Request) -> JSONResponse:
        return JSONResponse(request.session)

    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(
        SessionMiddleware,
        store=MemoryStore(development=True),
        secrets=[SECRET],
        cookie_name="session",
        legacy_cookies=[StarletteCookie(secret_key=OLD)],
    )
    async with client(app, {"session": legacy}) as c:
        r = await c.get("/me")
    assert r.json() == {"user": "alice"}
    headers = r.headers.get_list("set-cookie")
    assert len(headers) == 1 and raw_id(value_of(headers[0]))


async def test_an_app_with_no_legacy_option_ignores_old_cookies() -> None:
    """Without legacy_cookies nothing is read: the option is off by default."""
    legacy = await starlette_cookie(user="alice")
    app = new_starlette(MemoryStore(development=True))
    async with client(app, {"session": legacy}) as c:
        assert (await c.get("/me")).json() == {}


# -- Flask ---------------------------------------------------------------------------------


def new_flask(store: Store, *legacy: Any) -> flask.Flask:
    app = flask.Flask("new")
    app.config.update(
        SECRET_KEY=SECRET,
        SESSIONWARE_COOKIE_NAME=SID,
        SESSIONWARE_SECURE=False,
        SESSIONWARE_LEGACY_COOKIES=list(legacy),
    )
    Sessionware(app, store=store, csrf=False)

    @app.get("/me")
    def me() -> Any:
        return flask.jsonify(dict(flask.session))

    return app


@pytest.mark.parametrize("kind", STORES)
def test_flask_cookie_becomes_a_server_side_session(kind: str, tmp_path: Path) -> None:
    """A Flask app switched to sessionware keeps its users signed in: the first request
    with Flask's cookie gets the same data under a fresh id, the old cookie cleared."""
    legacy = flask_cookie(user_id=42, roles=("admin",))
    reader = FlaskCookie(secret_key=OLD)
    with sync_store(kind, tmp_path) as store, new_flask(store, reader).test_client() as c:
        c.set_cookie("session", legacy)
        r = c.get("/me")
        assert r.get_json() == {"user_id": 42, "roles": ["admin"], "_permanent": True}
        sent = {h.split("=", 1)[0]: h for h in r.headers.getlist("Set-Cookie")}
        assert sent["session"].startswith("session=;")
        assert raw_id(value_of(sent[SID])) != legacy
        assert c.get_cookie("session") is None
        assert c.get("/me").get_json()["user_id"] == 42  # on the new cookie alone


def test_flask_cookie_with_the_wrong_secret_is_no_session() -> None:
    """A Flask cookie signed with another SECRET_KEY signs nobody in."""
    store = MemoryStore(development=True)
    app = new_flask(store, FlaskCookie(secret_key=OLD))
    with app.test_client() as c:
        c.set_cookie("session", flask_cookie("some-other-secret", user_id=42))
        r = c.get("/me")
    assert r.get_json() == {} and len(store) == 0


def test_flask_cookie_signed_with_a_fallback_key_is_read() -> None:
    """SECRET_KEY_FALLBACKS verify too, as in Flask."""
    app = new_flask(
        MemoryStore(development=True), FlaskCookie(secret_key="new-key", fallbacks=[OLD])
    )
    with app.test_client() as c:
        c.set_cookie("session", flask_cookie(OLD, user_id=7))
        assert c.get("/me").get_json()["user_id"] == 7


async def test_flask_cookie_read_by_the_asgi_adapter_too() -> None:
    """An app moving from Flask to Starlette keeps its users as well: one core, two adapters."""
    legacy = flask_cookie(user_id=5)
    app = new_starlette(MemoryStore(development=True), FlaskCookie(secret_key=OLD))
    async with client(app, {"session": legacy}) as c:
        assert (await c.get("/me")).json()["user_id"] == 5


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"legacy_cookies": "session"}, "must be a list"),
        ({"legacy_cookies": [object()]}, "StarletteCookie"),
    ],
)
def test_wrong_legacy_option_fails_at_start_up(options: dict[str, Any], message: str) -> None:
    """A legacy_cookies value that is not a list of readers stops the app with the fix."""
    with pytest.raises(ConfigurationError, match=message):
        SessionMiddleware(
            None,  # type: ignore[arg-type]
            store=MemoryStore(development=True),
            secrets=[SECRET],
            **options,
        )


def test_reader_needs_a_secret_and_a_lifetime() -> None:
    """An empty secret or no max_age is refused: old cookies are read only while valid."""
    with pytest.raises(ConfigurationError, match="secret_key"):
        StarletteCookie(secret_key="")
    with pytest.raises(ConfigurationError, match="max_age"):
        FlaskCookie(secret_key=OLD, max_age=None)


def test_plain_turns_tagged_values_into_json_data() -> None:
    """Flask's tagged types become plain JSON data (tuples to lists, the rest to text)."""
    assert plain({"t": (1, 2), "b": b"x", 3: {"n": None}}) == {
        "t": [1, 2],
        "b": "x",
        "3": {"n": None},
    }


def test_legacy_option_costs_nothing_when_off() -> None:
    """With the option off the core holds no reader: opening a request checks one attribute."""
    core = SessionCore.build(MemoryStore(development=True), [SECRET], None, {}, adapter="t")
    assert core._legacy is None


def test_flask_login_user_carried_into_sessionware_login() -> None:
    """The guide's recipe: a Flask-Login user (``_user_id`` in Flask's cookie) is logged in
    with sessionware.flask.login on the first request, with a new id and device entry."""
    from sessionware.flask import UserMixin, current_user, login_user

    class User(UserMixin):
        def __init__(self, id: str) -> None:
            self.id = id

    store = MemoryStore(development=True)
    app = new_flask(store, FlaskCookie(secret_key=OLD))
    sw = app.extensions["sessionware"]
    sw.user_loader(User)

    @app.before_request
    def carry_login() -> None:
        if "_user_id" in flask.session and not current_user.is_authenticated:
            login_user(User(flask.session.pop("_user_id")))

    @app.get("/who")
    def who() -> Any:
        return {"user": current_user.get_id() if current_user.is_authenticated else None}

    with app.test_client() as c:
        c.set_cookie("session", flask_cookie(_user_id="42", _fresh=True))
        assert c.get("/who").get_json() == {"user": "42"}
        assert c.get_cookie("session") is None
        assert c.get("/who").get_json() == {"user": "42"}  # on the new cookie alone
        assert "_user_id" not in c.get("/me").get_json()
    assert len(list(store.sync.keys_of("42"))) == 1


@pytest.mark.parametrize("payload", [b"!!not base64", b"WzEsMl0", b"e30"])
async def test_validly_signed_garbage_is_no_session(payload: bytes) -> None:
    """A cookie signed with the right key around a payload that is not base64, not an
    object ([1,2]) or empty ({}) gives no session and no error."""
    import hashlib

    from flask.json.tag import TaggedJSONSerializer
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    flask_signer = URLSafeTimedSerializer(
        OLD,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    ).make_signer()
    cookies = [
        ("session", TimestampSigner(OLD).sign(payload).decode()),
        ("old_flask", flask_signer.sign(payload).decode()),
    ]
    store = MemoryStore(development=True)
    app = new_starlette(
        store,
        StarletteCookie(secret_key=OLD),
        FlaskCookie(secret_key=OLD, cookie_name="old_flask"),
    )
    for name, value in cookies:
        async with client(app, {name: value}) as c:
            r = await c.get("/me")
        assert r.status_code == 200 and r.json() == {}
    assert len(store) == 0


async def test_adoption_race_lost_between_the_two_loads_joins_the_winner() -> None:
    """Request A finds no record, then B makes it and marks the cookie spent before A
    looks at the marker: A joins B's session instead of refusing the cookie."""
    from sessionware.session import SyncSession

    legacy = await starlette_cookie(user="alice")
    store = MemoryStore(development=True)
    core = SessionCore.build(
        store, [SECRET], None, {"legacy_cookies": [StarletteCookie(secret_key=OLD)]}, adapter="t"
    )
    header = f"session={legacy}"
    a = core.begin(header, SyncSession)
    request = a.send(None)
    assert request.method == "load"  # A's first look: no record yet
    reply = core.perform(request)
    assert reply is None
    b_session = core.run(core.begin(header, SyncSession))  # B makes it, and the marker
    request = a.send(reply)
    while True:
        try:
            request = a.send(core.perform(request))
        except StopIteration as done:
            a_session = done.value
            break
    assert a_session.id == b_session.id and dict(a_session) == {"user": "alice"}
    assert a_session.issued
