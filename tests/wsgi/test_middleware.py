"""The plain WSGI ``SessionMiddleware`` around a minimal WSGI app (no Flask).

Every request goes through ``wsgiref.validate`` on both sides of the middleware, so
the middleware must also keep the WSGI protocol (start_response once, the body's
``close()`` called, str headers). The outage tests use real stores that really go
away: a redis-server of the test's own, stopped and started by PID, and a SQLite
file overwritten with garbage and then restored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

import pytest

from sessionware.exceptions import HTTPError
from sessionware.session import SyncSession
from sessionware.stores import MemoryStore, RedisStore, SQLiteStore
from sessionware.tokens import new_session_id, store_key
from sessionware.wsgi import SESSION_KEY, SessionMiddleware, WsgiView
from tests.helpers import SECRET, attributes, raw_id, signed
from tests.stores.redis_servers import RedisServer, running_server

COOKIE = "__Host-sid"
StartResponse = Callable[..., Any]
Environ = dict[str, Any]


# -- the app under the middleware ------------------------------------------------------


class App:
    """A minimal WSGI app whose paths each do one thing with the session.

    Paths under ``/lazy/`` are served by a generator, which calls ``start_response``
    only when the server first iterates the body (legal WSGI, and the harder case for
    a middleware). ``before_start`` runs after the handler and before the response
    starts: the outage tests stop the store there, mid-request.
    """

    def __init__(self) -> None:
        self.before_start: Callable[[], None] | None = None
        self.closed = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ["PATH_INFO"]
        if path.startswith("/lazy/"):
            environ["PATH_INFO"] = path[len("/lazy") :]
            return self._lazy(environ, start_response)
        if path == "/legacy-write":
            environ[SESSION_KEY]["via"] = "write"
            if self.before_start is not None:
                self.before_start()
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written through write()")
            return []
        if path == "/started-then-denied":
            environ[SESSION_KEY]["tried"] = "1"
            start_response("200 OK", [("Content-Type", "text/plain")])
            raise HTTPError(403, "Forbidden after all")
        status, headers, body = self.handle(environ)
        return self._eager(status, headers, body, start_response)

    def _eager(
        self, status: str, headers: list[tuple[str, str]], body: bytes, start: StartResponse
    ) -> Iterable[bytes]:
        if self.before_start is not None:
            self.before_start()
        start(status, headers)
        return _Closing([body], self)

    def _lazy(self, environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        try:
            status, headers, body = self.handle(environ)
            if self.before_start is not None:
                self.before_start()
            start_response(status, headers)
            yield body
        finally:
            self.closed += 1

    def handle(self, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
        session: SyncSession = environ[SESSION_KEY]
        path: str = environ["PATH_INFO"]
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        headers = [("Content-Type", "text/plain")]
        if path == "/":
            return "200 OK", headers, b"untouched"
        if path == "/set":
            for k, v in query.items():
                session[k] = v
            return "200 OK", headers, b"set"
        if path == "/read":
            body = json.dumps(dict(session)).encode()
            return "200 OK", [("Content-Type", "application/json")], body
        if path == "/vary":
            session.get("x")
            return "200 OK", [*headers, ("Vary", "Accept-Encoding")], b"v"
        if path == "/destroy":
            session.destroy()
            return "200 OK", headers, b"destroyed"
        if path == "/regenerate":
            session.regenerate()
            return "200 OK", headers, b"regenerated"
        if path == "/increment":
            return "200 OK", headers, str(session.increment("n")).encode()
        if path == "/companion":
            WsgiView(environ).add_cookie("device=d1; Path=/; HttpOnly")
            return "200 OK", headers, b"companion"
        if path.startswith("/fail/"):
            for k, v in query.items():
                session[k] = v
            code = int(path.rsplit("/", 1)[1])
            return f"{code} Whatever", headers, b"failed"
        if path == "/boom":
            session["half"] = "written"
            raise RuntimeError("the handler failed half-way")
        if path == "/denied":
            for k, v in query.items():
                session[k] = v
            raise HTTPError(401, "Not authenticated", {"WWW-Authenticate": "Session"})
        return "404 Not Found", headers, b"no such path"


class _Closing:
    """An eager app's body that counts its ``close()`` (the middleware must pass it on)."""

    def __init__(self, chunks: list[bytes], app: App) -> None:
        self.chunks = chunks
        self.app = app

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.app.closed += 1


# -- a client that plays the server ------------------------------------------------------


class Response:
    """What the server would send: status code, header pairs, body."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status.split(" ", 1)[0])
        self.reason = status.split(" ", 1)[1]
        self.headers = headers
        self.body = body

    def get(self, name: str) -> str | None:
        values = self.getlist(name)
        return ", ".join(values) if values else None

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def set_cookies(self) -> list[str]:
        return self.getlist("Set-Cookie")

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Calls the WSGI app as a server would and carries one session cookie by hand."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, scheme: str = "https") -> None:
        self.app = validator(app)
        self.scheme = scheme
        self.value: str | None = None

    def get(self, path: str, *, cookie: str | None = None) -> Response:
        """GET ``path`` with our cookie (or the raw Cookie header given); keep what is set."""
        target, _, query = path.partition("?")
        environ: Environ = {"SCRIPT_NAME": "", "PATH_INFO": target, "QUERY_STRING": query}
        environ["wsgi.url_scheme"] = self.scheme
        if cookie is not None:
            environ["HTTP_COOKIE"] = cookie
        elif self.value is not None:
            environ["HTTP_COOKIE"] = f"{COOKIE}={self.value}"
        setup_testing_defaults(environ)
        seen: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if seen and exc_info is None:
                raise AssertionError("start_response called twice without exc_info")
            seen.append((status, headers))
            return written.append  # the legacy write() callable

        body = self.app(environ, start_response)
        try:
            data = b"".join([*written, *body])
        finally:
            body.close()  # type: ignore[attr-defined]
        status, headers = seen[-1]
        response = Response(status, headers, data)
        if cookie is None:
            for header in response.set_cookies:
                name, _, rest = header.partition("=")
                if name == COOKIE:
                    self.value = rest.split(";")[0] or None
        return response


def wrap(store: Any, app: App | None = None, **options: Any) -> tuple[Client, App]:
    """The app (validated on its side too) under SessionMiddleware, and a client for it."""
    inner = app or App()
    options.setdefault("secrets", [SECRET])
    middleware = SessionMiddleware(inner, store=store, **options)
    return Client(middleware), inner


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    """A fresh development MemoryStore."""
    s = MemoryStore(development=True)
    yield s
    s.sync.close()


def stored(store: Any, signed_value: str | None) -> dict[str, str] | None:
    """The record behind a cookie value, through the store's sync face."""
    assert signed_value
    found = store.sync.load(store_key(raw_id(signed_value)))
    return None if found is None else dict(found)


def outage_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The adapter's store-outage log lines."""
    return [r.getMessage() for r in caplog.records if "store unavailable" in r.getMessage()]


LAZY = ["", "/lazy"]
LAZY_IDS = ["eager", "lazy"]


# -- values across requests ----------------------------------------------------------------


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_set_then_read_back_across_requests(store: MemoryStore, lazy: str) -> None:
    """A value set in one request is stored at the SHA-256 of the id and read back later;
    the issuing response varies by Cookie and is not cacheable."""
    client, app = wrap(store)
    first = client.get(f"{lazy}/set?user=ada&theme=dark")
    assert first.status == 200 and first.body == b"set"
    (header,) = first.set_cookies
    attrs = attributes(header)
    assert header.startswith(f"{COOKIE}=")
    assert {"secure", "httponly"} <= attrs.keys()
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "lax"
    assert first.get("Vary") == "Cookie"
    assert first.get("Cache-Control") == "no-store"
    record = stored(store, client.value)
    assert record is not None
    assert json.loads(record[".user"]) == "ada" and json.loads(record[".theme"]) == "dark"

    again = client.get(f"{lazy}/read")
    assert again.json() == {"user": "ada", "theme": "dark"}
    assert again.set_cookies == []  # nothing changed: no new cookie
    assert again.get("Vary") == "Cookie"
    assert client.get(f"{lazy}/set?theme=light").set_cookies == []  # same id, no re-issue
    assert client.get(f"{lazy}/read").json() == {"user": "ada", "theme": "light"}
    assert app.closed == 4  # every body's close() reached the app


def test_values_are_stored_only_under_the_hashed_id(store: MemoryStore) -> None:
    """The store holds the record at SHA-256(id) and nowhere at the raw id."""
    client, _ = wrap(store)
    client.get("/set?user=ada")
    assert client.value is not None
    sid = raw_id(client.value)
    record = store.sync.load(store_key(sid))
    assert record is not None and json.loads(record[".user"]) == "ada"
    assert store.sync.load(sid) is None


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_untouched_request_gets_no_cookie_and_no_vary(store: MemoryStore, lazy: str) -> None:
    """A request with no cookie that never looks at the session goes out exactly as the
    app made it: no Set-Cookie, no Vary, no record."""
    client, _ = wrap(store)
    r = client.get(f"{lazy}/")
    assert r.status == 200 and r.body == b"untouched"
    assert r.headers == [("Content-Type", "text/plain")]
    assert len(store) == 0
    client.get("/set?user=ada")
    before = stored(store, client.value)
    # With a live session cookie: nothing written, no cookie; Vary still says the
    # response came to a request carrying a session (the adapters' shared rule).
    r = client.get(f"{lazy}/")
    assert r.headers == [("Content-Type", "text/plain"), ("Vary", "Cookie")]
    assert stored(store, client.value) == before


def test_reading_without_a_session_varies_but_sets_nothing(store: MemoryStore) -> None:
    """Reading an empty session stores nothing and sets no cookie, but still varies by Cookie."""
    client, _ = wrap(store)
    r = client.get("/read")
    assert r.json() == {}
    assert r.set_cookies == []
    assert r.get("Vary") == "Cookie"
    assert len(store) == 0


def test_vary_is_merged_with_the_apps_own(store: MemoryStore) -> None:
    """The app's Vary keeps its values and gains Cookie once."""
    client, _ = wrap(store)
    assert client.get("/vary").getlist("Vary") == ["Accept-Encoding, Cookie"]


def test_plain_http_gets_a_plain_cookie_name(store: MemoryStore) -> None:
    """Over http with cookie_name="sid" the cookie is not Secure (no __Host- prefix)."""
    app = App()
    middleware = SessionMiddleware(app, store=store, secrets=[SECRET], cookie_name="sid")
    client = Client(middleware, scheme="http")
    r = client.get("/set?user=ada")
    (header,) = r.set_cookies
    assert header.startswith("sid=")
    assert "secure" not in attributes(header)


def test_increment_and_regenerate(store: MemoryStore) -> None:
    """session.increment counts in the store; regenerate issues a new id and drops the
    old record."""
    client, _ = wrap(store)
    assert [client.get("/increment").body for _ in range(3)] == [b"1", b"2", b"3"]
    old = client.value
    r = client.get("/regenerate")
    assert client.value is not None and client.value != old
    assert r.get("Cache-Control") == "no-store"
    assert stored(store, old) is None
    assert client.get("/read").json() == {"n": 3}


def test_companion_cookie_goes_out_with_no_store(store: MemoryStore) -> None:
    """A cookie another layer queued on the view is sent, and the response is not cacheable."""
    client, _ = wrap(store)
    r = client.get("/companion")
    assert r.set_cookies == ["device=d1; Path=/; HttpOnly"]
    assert r.get("Cache-Control") == "no-store"


# -- cookies that are no session -------------------------------------------------------------


def _bad_cookies() -> list[tuple[str, str]]:
    sid = new_session_id()
    good = signed(sid)
    return [
        ("tampered", f"{COOKIE}=" + good[:-1] + ("A" if good[-1] != "A" else "B")),
        ("unsigned", f"{COOKIE}={sid}"),
        ("wrong-secret", f"{COOKIE}=" + signed(sid, ["another-secret-" + "z" * 40])),
        ("unknown", f"{COOKIE}={good}"),  # validly signed, but no such session
        ("oversized-value", f"{COOKIE}=" + "a" * 5000),
        ("oversized-header", f"{COOKIE}={good}; pad=" + "x" * 20000),
        ("garbage", f'{COOKIE}=%%%\\"not a cookie\x7f'),
        ("latin-1 bytes", f"{COOKIE}=\xff\xfe\xe9t\xe9"),  # as a server decodes raw bytes
        ("no value", f"{COOKIE}"),
        ("empty", f"{COOKIE}="),
        ("separators only", ";;;=;= ;"),
        ("quoted", f'{COOKIE}="{good}"'),
        ("signed non-id", f"{COOKIE}=" + signed("../../etc/passwd")),
    ]


@pytest.mark.parametrize(("kind", "cookie"), _bad_cookies(), ids=[k for k, _ in _bad_cookies()])
def test_bad_cookie_is_no_session_never_a_500(store: MemoryStore, kind: str, cookie: str) -> None:
    """A tampered, oversized or malformed cookie is "no session": the app runs with an
    empty session, a write gets a fresh id, and the bad value is never adopted."""
    client, _ = wrap(store)
    r = client.get("/read", cookie=cookie)
    assert r.status == 200
    assert r.json() == {}
    assert all(h.split("=", 1)[1].startswith(";") for h in r.set_cookies)  # at most a clearing
    w = client.get("/set?user=ada", cookie=cookie)
    assert w.status == 200
    (issued,) = [h for h in w.set_cookies if not h.split("=", 1)[1].startswith(";")]
    new_value = issued.split(";")[0].partition("=")[2]
    assert raw_id(new_value) not in cookie
    assert len(store) == 1
    assert stored(store, new_value) is not None


def test_a_stale_cookie_of_our_name_is_cleared(store: MemoryStore) -> None:
    """A validly signed cookie with nothing behind it is expired in the response."""
    client, _ = wrap(store)
    r = client.get("/read", cookie=f"{COOKIE}={signed(new_session_id())}")
    (header,) = r.set_cookies
    assert header.startswith(f"{COOKIE}=;")
    assert attributes(header)["max-age"] == "0"
    assert client.get("/read", cookie="x__Host-sid=whatever").set_cookies == []


# -- destroy, failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_destroyed_session_clears_the_cookie(store: MemoryStore, lazy: str) -> None:
    """destroy() deletes the record and the response expires the cookie with its attributes;
    replaying the old cookie afterwards opens nothing."""
    client, _ = wrap(store)
    client.get("/set?user=ada")
    old = client.value
    r = client.get(f"{lazy}/destroy")
    (header,) = r.set_cookies
    assert header.startswith(f"{COOKIE}=;")
    attrs = attributes(header)
    assert attrs["max-age"] == "0" and attrs["path"] == "/" and "secure" in attrs
    assert client.value is None
    assert stored(store, old) is None
    assert len(store) == 0
    replay = client.get("/read", cookie=f"{COOKIE}={old}")
    assert replay.json() == {}


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_5xx_saves_nothing(store: MemoryStore, code: int, lazy: str) -> None:
    """A 5xx answer means the handler failed half-way: no new session, no change stored."""
    client, _ = wrap(store)
    r = client.get(f"{lazy}/fail/{code}?user=eve")
    assert r.status == code
    assert r.set_cookies == []
    assert len(store) == 0
    client.get("/set?user=ada")
    before = stored(store, client.value)
    r = client.get(f"{lazy}/fail/{code}?user=eve&extra=1")
    assert r.status == code and r.set_cookies == []
    assert stored(store, client.value) == before
    assert client.get("/read").json() == {"user": "ada"}


def test_a_4xx_still_saves(store: MemoryStore) -> None:
    """Only 5xx is a failed handler: a 404 page may well have changed the session."""
    client, _ = wrap(store)
    r = client.get("/fail/404?seen=yes")
    assert r.status == 404
    assert len(r.set_cookies) == 1
    assert client.get("/read").json() == {"seen": "yes"}


def test_an_exception_in_the_app_saves_nothing(store: MemoryStore) -> None:
    """An app that raises lets the exception through to the server (its 500), and the
    half-made change is not stored."""
    client, _ = wrap(store)
    client.get("/set?user=ada")
    before = stored(store, client.value)
    with pytest.raises(RuntimeError, match="half-way"):
        client.get("/boom")
    assert stored(store, client.value) == before
    with pytest.raises(RuntimeError, match="half-way"):
        client.get("/lazy/boom")
    assert stored(store, client.value) == before


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_http_error_becomes_its_status(store: MemoryStore, lazy: str) -> None:
    """sessionware's HTTPError raised by the app is answered with its status, text and
    headers; as a 4xx, the session changes made before it are kept."""
    client, _ = wrap(store)
    r = client.get(f"{lazy}/denied?tried=1")
    assert r.status == 401
    assert r.reason == "Unauthorized"
    assert r.body == b"Not authenticated"
    assert r.get("WWW-Authenticate") == "Session"
    assert r.get("Content-Length") == str(len(b"Not authenticated"))
    assert r.get("Vary") == "Cookie"
    assert len(r.set_cookies) == 1
    assert client.get("/read").json() == {"tried": "1"}


def test_http_error_after_the_app_started_its_response(store: MemoryStore) -> None:
    """An app that called start_response and then raised HTTPError is still answered
    with the error: the second start_response carries exc_info, as WSGI demands (a
    server refuses a second call without it)."""
    client, _ = wrap(store)
    r = client.get("/started-then-denied")
    assert r.status == 403
    assert r.body == b"Forbidden after all"
    assert r.get("Vary") == "Cookie"
    assert len(r.set_cookies) == 1  # the session was finished when the 200 started
    assert client.get("/read").json() == {"tried": "1"}


def test_an_eager_body_is_handed_on_as_is(store: MemoryStore, tmp_path: Path) -> None:
    """The body of an app that started its response before returning is passed to the
    server untouched, so a server's wsgi.file_wrapper (sendfile) still recognises it."""
    page = tmp_path / "page.txt"
    page.write_bytes(b"static page")

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ[SESSION_KEY].get("x")
        start_response("200 OK", [("Content-Type", "text/plain")])
        wrapper: Callable[[Any], Iterable[bytes]] = environ["wsgi.file_wrapper"]
        return wrapper(page.open("rb"))

    middleware = SessionMiddleware(app, store=store, secrets=[SECRET])
    environ: Environ = {"wsgi.file_wrapper": FileWrapper}
    setup_testing_defaults(environ)
    seen: list[list[tuple[str, str]]] = []
    body = middleware(environ, lambda status, headers, exc_info=None: seen.append(headers))
    try:
        assert isinstance(body, FileWrapper)
        assert b"".join(body) == b"static page"
    finally:
        body.close()  # type: ignore[attr-defined]
    assert seen == [[("Content-Type", "text/plain"), ("Vary", "Cookie")]]


# -- store outages -----------------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start."""
    with running_server() as s:
        yield s


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[RedisStore]:
    """A RedisStore on that server, with short timeouts."""
    s = RedisStore.from_url(redis_server.url, connect_timeout=0.5, timeout=0.5)
    yield s
    s.sync.close()


def assert_503(r: Response) -> None:
    """The outage answer: 503, Retry-After, plain text, no cookie, nothing cached."""
    assert r.status == 503
    assert r.get("Retry-After") == "5"
    assert r.get("Cache-Control") == "no-store"
    assert r.set_cookies == []
    assert b"session store cannot be reached" in r.body
    assert b"Traceback" not in r.body


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_redis_outage_is_a_503_with_a_log_line_then_recovers(
    redis_server: RedisServer,
    redis_store: RedisStore,
    caplog: pytest.LogCaptureFixture,
    lazy: str,
) -> None:
    """With Redis stopped every request is a 503 with Retry-After and one rate-limited log
    line that names no session; once it is back on its port, service resumes."""
    caplog.set_level(logging.ERROR, logger="sessionware")
    client, _ = wrap(redis_store)
    assert client.get(f"{lazy}/set?user=ada").status == 200
    assert client.get(f"{lazy}/read").json() == {"user": "ada"}
    cookie = client.value
    assert cookie is not None

    redis_server.stop()
    for path in ("/read", "/set?user=eve", "/", "/read"):
        assert_503(client.get(lazy + path))
    logs = outage_logs(caplog)
    assert len(logs) == 1  # one line for the burst
    assert "redis unavailable" in logs[0]
    assert cookie not in caplog.text and raw_id(cookie) not in caplog.text
    assert store_key(raw_id(cookie)) not in caplog.text

    redis_server.start()  # same port, empty: nothing was persisted
    r = client.get(f"{lazy}/read")
    assert r.status == 200 and r.json() == {}
    assert client.get(f"{lazy}/set?user=ada").status == 200
    assert client.get(f"{lazy}/read").json() == {"user": "ada"}


@pytest.mark.parametrize("lazy", LAZY, ids=LAZY_IDS)
def test_store_lost_while_the_app_runs_is_a_503_not_a_half_answer(
    redis_server: RedisServer, redis_store: RedisStore, lazy: str
) -> None:
    """Redis goes away after the session was loaded and before the response starts: the
    write fails, so the app's answer is replaced by the 503 (its body dropped, closed)."""
    app = App()
    client, _ = wrap(redis_store, app)
    assert client.get("/set?user=ada").status == 200
    app.before_start = redis_server.stop
    closed = app.closed
    r = client.get(f"{lazy}/set?user=eve")
    assert_503(r)
    assert b"set" not in r.body
    assert app.closed == closed + 1
    app.before_start = None
    redis_server.start()
    assert client.get("/set?user=bob").status == 200
    assert client.get("/read").json() == {"user": "bob"}


def test_legacy_write_calls_after_a_late_503_are_dropped(
    redis_server: RedisServer, redis_store: RedisStore
) -> None:
    """An app that sends its body through the write() callable: its writes reach the
    client normally, and are dropped when the store failed and the 503 replaced them."""
    app = App()
    client, _ = wrap(redis_store, app)
    r = client.get("/legacy-write")
    assert r.status == 200 and r.body == b"written through write()"
    assert len(r.set_cookies) == 1
    app.before_start = redis_server.stop
    r = client.get("/legacy-write")
    assert_503(r)
    assert b"written" not in r.body


def test_sqlite_file_turned_to_garbage_is_a_503_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SQLite file overwritten with garbage answers 503 (never sqlite3's error as a 500);
    with the file restored, the same session is served again."""
    caplog.set_level(logging.ERROR, logger="sessionware")
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    try:
        client, _ = wrap(store)
        client.get("/set?user=ada")
        store.sync.close()  # checkpoints the WAL into the file, closes this thread's connection
        good = {p: p.read_bytes() for p in tmp_path.iterdir()}
        for p in good:
            p.write_bytes(b"this is not a database, just text " * 200)
        assert_503(client.get("/read"))
        assert_503(client.get("/set?user=eve"))
        (line,) = outage_logs(caplog)
        assert "SQLite store unavailable" in line
        store.sync.close()
        for p, data in good.items():
            p.write_bytes(data)
        assert client.get("/read").json() == {"user": "ada"}
        assert client.get("/set?user=bob").status == 200
        assert client.get("/read").json() == {"user": "bob"}
    finally:
        store.sync.close()
