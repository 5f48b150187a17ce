"""Login for Flask (``sessionware.flask.login``) end to end, on the real stores.

Flask's test client for the flows; a real threaded server for the race between
parallel requests of one browser and its logout. Each test runs over MemoryStore,
SQLiteStore and RedisStore (``wsgi_store``).
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask, jsonify, render_template_string, request, session
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from sessionware.core import SessionCore
from sessionware.exceptions import ConfigurationError, StoreUnavailableError
from sessionware.flask import Sessionware
from sessionware.flask.login import (
    AnonymousUser,
    UserMixin,
    confirm_login,
    current_user,
    fresh_login_required,
    login_fresh,
    login_required,
    login_user,
    logout_everywhere,
    logout_user,
    password_changed,
    revoke,
    safe_next,
    sessions_of,
)
from sessionware.remember import RememberConfig
from sessionware.stores.base import StoreBase
from sessionware.tokens import store_key
from tests.helpers import SECRET, raw_id
from tests.test_auth_support import Clock

EVIL = ["//evil.example", "https://evil.example", "/\\evil", "/\t/evil.example", "///evil.example"]


class User(UserMixin):
    """An account as an app keeps it: an int id, a name, an active flag."""

    def __init__(self, id: int, name: str, active: bool = True) -> None:
        self.id = id
        self.name = name
        self.active = active

    @property
    def is_active(self) -> bool:
        return self.active


@dataclasses.dataclass
class App:
    """The app under test, its extension, its users and how often the loader ran."""

    flask: Flask
    sw: Sessionware
    users: dict[int, User]
    loads: Counter[str]

    def client(self) -> FlaskClient:
        return self.flask.test_client()


def make_app(store: StoreBase, *, remember: Any = "default", **options: Any) -> App:
    """A small app using every login call the way a user's app would."""
    flask_app = Flask(__name__)
    flask_app.config.update(
        SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid", TESTING=True, **options.pop("config", {})
    )
    if remember == "default":
        remember = RememberConfig(cookie_name="remember", grace=0)
    options.setdefault("login_view", "login")
    # CSRF is attacked in test_csrf.py; here every POST is the test's own.
    options.setdefault("csrf", False)
    sw = Sessionware(flask_app, store=store, remember=remember, **options)
    users = {1: User(1, "alice"), 2: User(2, "bob"), 3: User(3, "carol", active=False)}
    loads: Counter[str] = Counter()

    @sw.user_loader
    def load(user_id: str) -> User | None:
        loads[user_id] += 1
        return users.get(int(user_id)) if user_id.isdigit() else None

    @flask_app.get("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @flask_app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return "the login form"
        user = users[int(request.form["user"])]
        if not login_user(user, remember=bool(request.form.get("remember"))):
            return "inactive account", 403
        return flask_app.redirect(safe_next(request.args.get("next"), "/"))

    @flask_app.get("/reauth")
    def reauth() -> str:
        return "type your password again"

    @flask_app.post("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    @flask_app.get("/me")
    def me() -> Response:
        return jsonify(
            user=current_user.get_id(),
            name=getattr(current_user, "name", None),
            authenticated=current_user.is_authenticated,
            anonymous=current_user.is_anonymous,
            fresh=login_fresh(),
        )

    @flask_app.route("/private", methods=["GET", "POST"])
    @login_required
    def private() -> str:
        session["hits"] = session.get("hits", 0) + 1
        return f"private {current_user.name}"

    @flask_app.get("/files/<path:name>")
    @login_required
    def files(name: str) -> str:
        return name

    @flask_app.get("/sensitive")
    @fresh_login_required
    def sensitive() -> str:
        return "sensitive"

    @flask_app.get("/sensitive60")
    @fresh_login_required(max_age=60)
    def sensitive60() -> str:
        return "sensitive60"

    @flask_app.post("/confirm")
    @login_required
    def confirm() -> str:
        confirm_login()
        return "confirmed"

    @flask_app.get("/devices")
    @login_required
    def devices() -> Response:
        return jsonify([{"handle": d.handle, "current": d.current} for d in sessions_of()])

    @flask_app.post("/revoke/<handle>")
    @login_required
    def do_revoke(handle: str) -> Response:
        return jsonify(revoke(handle))

    @flask_app.post("/everywhere")
    @login_required
    def everywhere() -> Response:
        return jsonify(logout_everywhere(keep_current=request.args.get("keep") != "0"))

    @flask_app.post("/password")
    @login_required
    def password() -> Response:
        return jsonify(password_changed())

    @flask_app.get("/template")
    def template() -> str:
        return render_template_string(
            "{{ current_user.is_authenticated }}:{{ current_user.get_id() }}"
        )

    @flask_app.get("/outage")
    def outage() -> str:
        raise StoreUnavailableError("the store is down (raised by the test)")

    return App(flask_app, sw, users, loads)


def cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return None if found is None else found.value


def log_in(client: FlaskClient, user: int = 1, *, remember: bool = False) -> None:
    data = {"user": str(user), **({"remember": "1"} if remember else {})}
    assert client.post("/login", data=data).status_code == 302


def whoami(client: FlaskClient) -> str | None:
    user: str | None = client.get("/me").json["user"]  # type: ignore[index]
    return user


def next_of(location: str) -> tuple[str, str | None]:
    """The path of a redirect and its ``next`` parameter."""
    parts = urlsplit(location)
    found = parse_qs(parts.query).get("next")
    return parts.path, found[0] if found else None


def with_clock(app: App, store: StoreBase) -> Clock:
    """Give the app's core a clock the test moves (Flask's config carries none)."""
    clock = Clock()
    assert app.sw.core is not None
    app.sw.core = SessionCore(dataclasses.replace(app.sw.core.config, clock=clock), store)
    return clock


# -- login, current_user, logout ------------------------------------------------------


def test_login_user_regenerates_the_session_id(wsgi_store: StoreBase) -> None:
    """The id the browser had before login (possibly planted) is deleted from the store
    and opens nothing afterwards; the browser gets a new one, its data comes along."""
    app = make_app(wsgi_store)
    client = app.client()
    assert client.get("/count").text == "1"
    before = cookie(client, "sid")
    assert before is not None
    old_key = store_key(raw_id(before))
    assert wsgi_store.sync.load(old_key) is not None

    log_in(client)
    after = cookie(client, "sid")
    assert after is not None and after != before
    assert wsgi_store.sync.load(old_key) is None  # fixation: the old record is gone
    attacker = app.client()
    attacker.set_cookie("sid", before)
    assert whoami(attacker) is None
    assert client.get("/me").json == {
        "user": "1",
        "name": "alice",
        "authenticated": True,
        "anonymous": False,
        "fresh": True,
    }
    assert client.get("/count").text == "2"  # the data came along
    [key] = wsgi_store.sync.keys_of("1")
    assert key == store_key(raw_id(after))


def test_current_user_comes_from_the_loader_once_per_request(wsgi_store: StoreBase) -> None:
    """current_user calls the loader with the id as text, once per request however
    often it is read; anonymous requests never call it; templates see current_user."""
    app = make_app(wsgi_store)
    client = app.client()
    assert client.get("/me").json["anonymous"] is True  # type: ignore[index]
    assert client.get("/template").text == "False:None"
    assert app.loads == Counter()
    log_in(client, 2)
    assert app.loads == Counter()  # login_user caches the user it was given
    assert client.get("/me").json["name"] == "bob"  # type: ignore[index]
    assert app.loads == Counter({"2": 1})
    assert client.get("/template").text == "True:2"
    assert app.loads == Counter({"2": 2})


def test_a_user_the_loader_no_longer_finds_or_disabled_is_anonymous(
    wsgi_store: StoreBase,
) -> None:
    """A deleted account (the loader answers None) reads as anonymous; a disabled one is
    not authenticated, so login_required turns it away."""
    app = make_app(wsgi_store)
    client = app.client()
    log_in(client)
    assert client.get("/private").status_code == 200
    app.users[1].active = False
    assert client.get("/private").status_code == 302
    del app.users[1]
    assert client.get("/me").json["anonymous"] is True  # type: ignore[index]


def test_login_user_refuses_an_inactive_user(wsgi_store: StoreBase) -> None:
    """Like Flask-Login: False, and nobody is logged in."""
    app = make_app(wsgi_store)
    client = app.client()
    r = client.post("/login", data={"user": "3"})
    assert r.status_code == 403
    assert whoami(client) is None
    assert wsgi_store.sync.keys_of("3") == []


def test_flask_login_only_arguments_are_refused_with_the_way_here(
    wsgi_store: StoreBase,
) -> None:
    """``duration=`` and ``fresh=False`` (Flask-Login's) say what to use instead, and
    nobody is logged in by the refused call; ``fresh=True`` is the default, accepted."""
    app = make_app(wsgi_store)
    alice = app.users[1]
    with app.flask.test_request_context("/"):
        app.flask.preprocess_request()
        with pytest.raises(TypeError, match=r"SESSIONWARE_REMEMBER = \{'ttl'"):
            login_user(alice, remember=True, duration=timedelta(days=7))
        with pytest.raises(TypeError, match="every password login is fresh"):
            login_user(alice, fresh=False)
        assert wsgi_store.sync.keys_of("1") == []
        assert login_user(alice, fresh=True) is True
        assert len(wsgi_store.sync.keys_of("1")) == 1


def test_logout_deletes_the_session_and_clears_both_cookies(wsgi_store: StoreBase) -> None:
    """The session record, its index entry and the remember-me series are gone; the
    response clears the session cookie and the remember-me cookie."""
    app = make_app(wsgi_store)
    client = app.client()
    log_in(client, remember=True)
    sid = cookie(client, "sid")
    assert sid is not None and cookie(client, "remember") is not None
    key = store_key(raw_id(sid))
    assert len(wsgi_store.sync.keys_of("1")) == 2  # the session and the series

    r = client.post("/logout")
    cleared = {c.split("=", 1)[0]: c for c in r.headers.getlist("Set-Cookie")}
    assert set(cleared) == {"sid", "remember"}
    assert all(c.split(";")[0].endswith("=") and "Max-Age=0" in c for c in cleared.values())
    assert wsgi_store.sync.load(key) is None
    assert wsgi_store.sync.keys_of("1") == []
    assert cookie(client, "sid") is None and cookie(client, "remember") is None
    assert whoami(client) is None
    stale = app.client()
    stale.set_cookie("sid", sid)
    assert whoami(stale) is None


# -- login_required and next ----------------------------------------------------------


def test_login_required_redirects_with_a_safe_next_and_back(wsgi_store: StoreBase) -> None:
    """An anonymous browser goes to the login view with this path and query as next;
    after login the app's view sends it back there."""
    app = make_app(wsgi_store)
    client = app.client()
    r = client.get("/private?x=1&y=%2F")
    assert r.status_code == 302
    path, target = next_of(r.headers["Location"])
    assert (path, target) == ("/login", "/private?x=1&y=%2F")
    assert target is not None
    r = client.post("/login?" + urlencode({"next": target}), data={"user": "1"})
    assert r.headers["Location"] == "/private?x=1&y=%2F"
    assert client.get(r.headers["Location"]).text == "private alice"


def test_next_is_re_encoded_from_the_request_path(wsgi_store: StoreBase) -> None:
    """A backslash in the path goes out percent-encoded, so the next is still a path here."""
    client = make_app(wsgi_store).client()
    r = client.get("/files/a", environ_overrides={"PATH_INFO": "/files/\\evil"})
    assert r.status_code == 302
    assert next_of(r.headers["Location"]) == ("/login", "/files/%5Cevil")


@pytest.mark.parametrize("target", EVIL)
def test_the_login_view_refuses_a_next_off_this_site(wsgi_store: StoreBase, target: str) -> None:
    """safe_next in the login view: a next to another site lands on the default instead."""
    client = make_app(wsgi_store).client()
    r = client.post("/login?" + urlencode({"next": target}), data={"user": "1"})
    assert r.status_code == 302
    assert r.headers["Location"] == "/"


def test_safe_next_keeps_only_paths_on_this_site() -> None:
    """Paths pass; URLs, scheme-relative and backslash tricks, whitespace and control
    characters, relative references and non-strings fall back to the default."""
    for good in ["/", "/a/b?c=d#e", "/caf%C3%A9", "/%2F%2Fevil.example", "/a:b"]:
        assert safe_next(good) == good
    bad: list[Any] = [
        *EVIL,
        "\\\\evil.example",
        "/\\/evil.example",
        " //evil.example",
        "/\n/evil.example",
        "/a\u2028b",
        "javascript:alert(1)",
        "evil.example",
        "?next=/",
        "",
        None,
        b"/bytes",
    ]
    for target in bad:
        assert safe_next(target) is None, target
        assert safe_next(target, "/home") == "/home"


def test_api_requests_get_a_401_instead_of_a_redirect(wsgi_store: StoreBase) -> None:
    """Accept preferring JSON, or a JSON body: 401 in JSON. No login_view: 401 for all."""
    client = make_app(wsgi_store).client()
    r = client.get("/private", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json == {"detail": "Not authenticated"}
    r = client.post("/private", json={"a": 1})
    assert r.status_code == 401
    r = client.get("/private", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 302  # a browser is redirected
    bare = make_app(wsgi_store, login_view=None).client()
    r = bare.get("/private")
    assert r.status_code == 401 and r.text == "Not authenticated"


# -- freshness ------------------------------------------------------------------------


def test_fresh_login_required_after_a_restore_and_confirm_login(wsgi_store: StoreBase) -> None:
    """A password login is fresh; a remember-me restore is not (redirect with next, or
    401 for an API request); confirm_login makes it fresh and rotates the id."""
    app = make_app(wsgi_store)
    client = app.client()
    log_in(client, remember=True)
    assert client.get("/sensitive").text == "sensitive"

    client.delete_cookie("sid")
    r = client.get("/sensitive")  # restored by the before_request hook, not fresh
    assert r.status_code == 302
    assert next_of(r.headers["Location"]) == ("/login", "/sensitive")
    assert client.get("/me").json == {
        "user": "1",
        "name": "alice",
        "authenticated": True,
        "anonymous": False,
        "fresh": False,
    }
    r = client.get("/sensitive", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json == {"detail": "Please confirm your password"}

    before = cookie(client, "sid")
    assert client.post("/confirm").text == "confirmed"
    assert cookie(client, "sid") not in (None, before)
    assert client.get("/sensitive").text == "sensitive"


def test_fresh_has_an_age(wsgi_store: StoreBase) -> None:
    """max_age per view (default fresh_max_age, 600 s); a stale login goes to refresh_view."""
    app = make_app(wsgi_store, refresh_view="reauth")
    clock = with_clock(app, wsgi_store)
    client = app.client()
    log_in(client)
    assert client.get("/sensitive60").status_code == 200
    clock.advance(120)
    assert client.get("/sensitive").status_code == 200
    r = client.get("/sensitive60")
    assert next_of(r.headers["Location"]) == ("/reauth", "/sensitive60")
    clock.advance(600)
    assert client.get("/sensitive").status_code == 302
    client.post("/confirm")
    assert client.get("/sensitive").status_code == 200
    assert client.get("/sensitive60").status_code == 200


def test_fresh_login_required_sends_anonymous_users_to_log_in(wsgi_store: StoreBase) -> None:
    """Not logged in at all: the login view (not refresh_view), or 401 Not authenticated."""
    client = make_app(wsgi_store, refresh_view="reauth").client()
    assert next_of(client.get("/sensitive").headers["Location"]) == ("/login", "/sensitive")
    r = client.get("/sensitive", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json == {"detail": "Not authenticated"}


# -- remember-me ----------------------------------------------------------------------


def test_remember_me_restores_the_same_user_in_a_new_session(wsgi_store: StoreBase) -> None:
    """Without its session cookie the browser is logged back in from the remember-me
    cookie, with a new session id and a rotated token."""
    app = make_app(wsgi_store)
    client = app.client()
    log_in(client, remember=True)
    first_sid, first_token = cookie(client, "sid"), cookie(client, "remember")
    client.delete_cookie("sid")
    assert whoami(client) == "1"
    assert cookie(client, "sid") not in (None, first_sid)
    assert cookie(client, "remember") not in (None, first_token)
    assert client.get("/private").text == "private alice"


def test_a_replayed_remember_token_revokes_the_series(wsgi_store: StoreBase) -> None:
    """Theft detection: once the owner's browser has moved on to its rotated token, the
    old one presented elsewhere ends the series and the sessions it made."""
    app = make_app(wsgi_store)
    owner = app.client()
    log_in(owner, remember=True)
    stolen = cookie(owner, "remember")
    assert stolen is not None
    owner.delete_cookie("sid")
    assert whoami(owner) == "1"  # restored: a new token is issued
    assert whoami(owner) == "1"  # the browser shows the new token: the old one retires
    rotated = cookie(owner, "remember")

    thief = app.client()
    thief.set_cookie("remember", stolen)
    assert whoami(thief) is None
    assert wsgi_store.sync.keys_of("1") == []  # series and its session revoked
    assert whoami(owner) is None
    again = app.client()
    again.set_cookie("remember", rotated or "")
    assert whoami(again) is None


def test_remember_me_from_app_config(wsgi_store: StoreBase) -> None:
    """SESSIONWARE_REMEMBER (a dict of RememberConfig options) and SESSIONWARE_LOGIN_VIEW
    configure login when the constructor does not; remember=True without remember-me
    on is a configuration error naming the fix."""
    app = make_app(
        wsgi_store,
        remember=None,
        login_view=None,
        config={
            "SESSIONWARE_REMEMBER": {"cookie_name": "keep", "grace": 0},
            "SESSIONWARE_LOGIN_VIEW": "login",
        },
    )
    assert app.sw.remember == RememberConfig(cookie_name="keep", grace=0)
    client = app.client()
    assert client.get("/private").status_code == 302
    log_in(client, remember=True)
    assert cookie(client, "keep") is not None
    client.delete_cookie("sid")
    assert whoami(client) == "1"

    off = make_app(wsgi_store, remember=False, config={"SESSIONWARE_REMEMBER": True})
    assert off.sw.remember is None
    with pytest.raises(ConfigurationError, match="SESSIONWARE_REMEMBER"):
        off.client().post("/login", data={"user": "1", "remember": "1"})


def test_hooks_the_app_registered_first_see_the_restored_user(wsgi_store: StoreBase) -> None:
    """The extension's 503 hook and the restore go before the app's own hooks."""
    flask_app = Flask(__name__)
    flask_app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid")
    seen: list[str | None] = []

    @flask_app.before_request
    def early() -> None:
        seen.append(current_user.get_id())

    sw = Sessionware(
        flask_app,
        store=wsgi_store,
        remember=RememberConfig(cookie_name="remember", grace=0),
        csrf=False,
    )
    assert flask_app.before_request_funcs[None][:2] == [sw._before, early]
    sw.user_loader(lambda user_id: User(int(user_id), "alice"))

    @flask_app.post("/login")
    def login() -> str:
        login_user(User(1, "alice"), remember=True)
        return "ok"

    @flask_app.get("/")
    def index() -> str:
        return "index"

    client = flask_app.test_client()
    client.post("/login")
    client.delete_cookie("sid")
    client.get("/")
    assert seen == [None, "1"]


def test_a_store_outage_in_a_view_is_a_503(wsgi_store: StoreBase) -> None:
    """StoreUnavailableError from a login, a restore or the app: 503 with Retry-After."""
    r = make_app(wsgi_store).client().get("/outage")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"


# -- devices and sweeps ---------------------------------------------------------------


def test_the_device_list_and_revoking_one(wsgi_store: StoreBase) -> None:
    """sessions_of() lists the current user's devices, this one marked; revoke(handle)
    ends the other one's session and nothing else; an unknown handle finds nothing."""
    app = make_app(wsgi_store)
    laptop, phone = app.client(), app.client()
    log_in(laptop)
    log_in(phone)
    listed = laptop.get("/devices").json
    assert listed is not None and sorted(d["current"] for d in listed) == [False, True]
    other = next(d["handle"] for d in listed if not d["current"])
    assert laptop.post("/revoke/not-a-handle").json is False
    assert laptop.post(f"/revoke/{other}").json is True
    assert whoami(phone) is None
    assert whoami(laptop) == "1"
    assert [d["current"] for d in laptop.get("/devices").json] == [True]  # type: ignore[union-attr]


def test_logout_everywhere_and_password_changed(wsgi_store: StoreBase) -> None:
    """logout_everywhere() keeps this device by default; password_changed() ends the
    others and rotates this one's id; keep_current=False signs this browser out too."""
    app = make_app(wsgi_store)
    here, b, c = app.client(), app.client(), app.client()
    for client in (here, b, c):
        log_in(client)
    assert here.post("/everywhere").json == 2
    assert (whoami(here), whoami(b), whoami(c)) == ("1", None, None)

    log_in(b)
    before = cookie(here, "sid")
    assert here.post("/password").json == 1
    assert whoami(b) is None and whoami(here) == "1"
    assert cookie(here, "sid") not in (None, before)

    assert here.post("/everywhere?keep=0").json == 1  # this one
    assert whoami(here) is None and cookie(here, "sid") is None
    assert wsgi_store.sync.keys_of("1") == []


def test_anonymous_user_is_what_flask_login_users_expect() -> None:
    """AnonymousUser and UserMixin answer as Flask-Login's do."""
    anon = AnonymousUser()
    assert (anon.is_authenticated, anon.is_active, anon.is_anonymous, anon.get_id()) == (
        False,
        False,
        True,
        None,
    )
    alice = User(7, "alice")
    assert (alice.is_authenticated, alice.is_anonymous, alice.get_id()) == (True, False, "7")
    assert alice == User(7, "someone") and alice != User(8, "alice")
    assert len({alice}) == 1
    with pytest.raises(NotImplementedError):
        UserMixin().get_id()


# -- a real threaded server: parallel requests against a logout ------------------------


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` on a threaded Werkzeug server on 127.0.0.1; yields ``host:port``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def fetch(
    host: str, method: str, path: str, cookie_header: str = "", body: str | None = None
) -> tuple[int, str, list[str]]:
    """One request on its own connection: status, body, Set-Cookie values."""
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        headers = {"Cookie": cookie_header} if cookie_header else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(), r.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()


THREADS = 16
AFTER = 8  # requests each thread sends once the logout has returned


def test_no_request_after_logout_is_served_as_logged_in(wsgi_store: StoreBase) -> None:
    """16 threads hit a login-protected page (which writes the session) with one
    browser's cookie while another thread logs that browser out: every request sent
    after the logout's response came back is turned away, and no in-flight write
    brings the session back."""
    app = make_app(wsgi_store)
    with serving(app.flask) as host:
        status, _, cookies = fetch(host, "POST", "/login", body="user=1")
        assert status == 302
        sid = next(c.split(";")[0] for c in cookies if c.startswith("sid="))
        key = store_key(raw_id(sid.split("=", 1)[1]))

        lock = threading.Lock()
        results: list[tuple[float, int, str]] = []
        logged_out = threading.Event()
        done_at: list[float] = []
        start = threading.Barrier(THREADS + 1)

        def hammer() -> None:
            start.wait()
            after = 0
            while after < AFTER:
                sent = time.monotonic()
                status, body, _ = fetch(host, "GET", "/private", sid)
                with lock:
                    results.append((sent, status, body))
                if logged_out.is_set() and sent > done_at[0]:
                    after += 1

        def log_out() -> None:
            start.wait()
            time.sleep(0.05)
            status, _, _ = fetch(host, "POST", "/logout", sid)
            assert status == 200
            done_at.append(time.monotonic())
            logged_out.set()

        threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
        threads.append(threading.Thread(target=log_out))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)

        assert done_at, "the logout did not complete"
        before = [r for r in results if r[0] < done_at[0]]
        after = [r for r in results if r[0] > done_at[0]]
        assert any(status == 200 and body == "private alice" for _, status, body in before)
        assert len(after) >= THREADS * AFTER
        assert {status for _, status, _ in after} == {302}
        assert wsgi_store.sync.load(key) is None
        assert wsgi_store.sync.keys_of("1") == []
        assert fetch(host, "GET", "/private", sid)[0] == 302
