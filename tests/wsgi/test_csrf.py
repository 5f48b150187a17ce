"""CSRF for Flask: ``CSRFProtect`` drives the one CSRF check from Flask's hooks.

Real sessions over a MemoryStore, through Flask's test client and, for the races, a
real threaded werkzeug server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Blueprint, Flask, render_template_string, request, session
from flask.testing import FlaskClient
from flask.views import MethodView
from werkzeug.serving import make_server

from sessionware.exceptions import ConfigurationError
from sessionware.flask import Sessionware
from sessionware.flask.csrf import CSRFProtect, csrf_token
from sessionware.session import CSRF_FIELD
from sessionware.stores import MemoryStore
from sessionware.tokens import store_key
from tests.helpers import SECRET, raw_id

SAME = {"Origin": "http://localhost"}
FORM = '<form method="post" action="/submit">{{ csrf_input() }}</form>'
TOKEN_IN = re.compile(r'name="_csrf" value="([^"]+)"')


class Hook(MethodView):
    """A class-based webhook, exempt as a class."""

    def post(self) -> str:
        return "class hook"


def make_app(
    store: MemoryStore, *, config: dict[str, Any] | None = None, **options: Any
) -> tuple[Flask, CSRFProtect, list[str]]:
    """A small Flask app on sessionware with CSRFProtect; ``seen`` lists what the views did."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSIONWARE_COOKIE_NAME="sid")
    Sessionware(app, store=store)
    app.config.update(config or {})  # after Sessionware: its own settings are its to read
    csrf = CSRFProtect(app, **options)
    seen: list[str] = []

    @app.get("/start")
    def start() -> str:
        session["user"] = "alice"
        return "started"

    @app.get("/form")
    def form() -> str:
        return render_template_string(FORM + "|{{ csrf_token() }}")

    @app.get("/token")
    def token() -> str:
        return csrf_token()

    @app.post("/submit")
    def submit() -> str:
        seen.append("submit:" + request.form.get("title", ""))
        return "saved"

    @app.post("/upload")
    def upload() -> str:
        file = request.files["doc"]
        seen.append(f"upload:{request.form['title']}:{file.read().decode()}")
        return "uploaded"

    @app.post("/api")
    def api() -> dict[str, bool]:
        seen.append("api")
        return {"ok": True}

    @app.post("/login")
    def login() -> str:
        if not session.is_new:  # type: ignore[attr-defined]
            session.regenerate()  # type: ignore[attr-defined]
        session["user"] = request.form.get("user", "alice")
        return csrf_token()

    @app.post("/hooks/stripe")
    @csrf.exempt
    def stripe() -> str:
        seen.append("hook")
        return "hooked"

    app.add_url_rule("/hooks/class", view_func=csrf.exempt(Hook).as_view("hook_class"))
    partner = Blueprint("partner", __name__)

    @partner.post("/ping")
    def ping() -> str:
        return "pong"

    app.register_blueprint(csrf.exempt(partner), url_prefix="/partner")
    return app, csrf, seen


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    """A fresh development MemoryStore."""
    s = MemoryStore(development=True)
    yield s
    s.sync.close()


def signed_in(app: Flask) -> tuple[FlaskClient, str]:
    """A client with a stored session, and a token of that session."""
    client = app.test_client()
    assert client.get("/start").status_code == 200
    return client, client.get("/token").text


# -- forms, headers, origins --------------------------------------------------------------


def test_form_post_without_a_token_is_refused_403_with_the_reason(store: MemoryStore) -> None:
    """A session's form post with no token never reaches the view."""
    app, _, seen = make_app(store)
    client, _ = signed_in(app)
    r = client.post("/submit", data={"title": "x"})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token missing\n"
    assert r.content_type == "text/plain; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Sec-Fetch-Site" in r.headers["Vary"]
    assert seen == []


def test_token_rendered_in_a_template_passes(store: MemoryStore) -> None:
    """``{{ csrf_input() }}`` and ``{{ csrf_token() }}`` work without arguments; both pass."""
    app, _, seen = make_app(store)
    client, _ = signed_in(app)
    page = client.get("/form").text
    hidden = TOKEN_IN.search(page)
    assert hidden is not None
    bare = page.rsplit("|", 1)[1]
    assert bare != hidden.group(1)  # masked afresh on every render
    for i, token in enumerate((hidden.group(1), bare)):
        r = client.post("/submit", data={"title": str(i), "_csrf": token})
        assert r.status_code == 200, r.text
    assert seen == ["submit:0", "submit:1"]


def test_flask_wtf_field_name_carries_the_token_too(store: MemoryStore) -> None:
    """A Flask-WTF template's ``name="csrf_token"`` field passes with a good token and is
    refused with a bad one; sessionware's own field, when sent, is the one judged."""
    app, _, seen = make_app(store)
    client, token = signed_in(app)
    assert client.post("/submit", data={"title": "a", "csrf_token": token}).status_code == 200
    bad = client.post("/submit", data={"title": "b", "csrf_token": "x" * 86})
    assert bad.status_code == 403
    both = client.post("/submit", data={"title": "c", "_csrf": "x" * 86, "csrf_token": token})
    assert both.status_code == 403
    assert seen == ["submit:a"]


def test_multipart_form_passes_and_the_view_reads_its_fields_and_files(
    store: MemoryStore,
) -> None:
    """The body the check read is the body the view parses: fields and files intact."""
    app, _, seen = make_app(store)
    client, token = signed_in(app)
    data = {"title": "t", "_csrf": token, "doc": (io.BytesIO(b"contents"), "a.txt")}
    r = client.post("/upload", data=data, content_type="multipart/form-data")
    assert r.status_code == 200, r.text
    assert seen == ["upload:t:contents"]


def test_token_header_passes_for_fetch(store: MemoryStore) -> None:
    """``X-CSRF-Token`` (and Flask-WTF's ``X-CSRFToken``) carry the token for a JSON call."""
    app, _, seen = make_app(store)
    client, token = signed_in(app)
    for name in ("X-CSRF-Token", "X-CSRFToken"):
        r = client.post("/api", json={"a": 1}, headers={name: token, **SAME})
        assert r.status_code == 200, r.text
    assert client.post("/api", json={"a": 1}, headers={"X-CSRF-Token": "x" * 86}).status_code == 403
    assert seen == ["api", "api"]


def test_cross_site_request_is_refused_even_with_a_valid_token(store: MemoryStore) -> None:
    """The origin gate comes first: a valid token does not buy a cross-site request in."""
    app, _, seen = make_app(store)
    client, token = signed_in(app)
    evil = client.post(
        "/submit", data={"_csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert evil.text == "Forbidden: request from another origin refused (Origin)\n"
    fetched = client.post(
        "/submit", data={"_csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetched.status_code == 403
    assert "cross-site request refused" in fetched.text
    assert seen == []


def test_token_of_another_session_is_refused(store: MemoryStore) -> None:
    """A token is bound to its session's secret: Bob's cookie with Alice's token fails."""
    app, _, seen = make_app(store)
    _, alice_token = signed_in(app)
    bob, bob_token = signed_in(app)
    r = bob.post("/submit", data={"_csrf": alice_token})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token invalid\n"
    assert bob.post("/submit", data={"_csrf": bob_token}).status_code == 200
    assert len(seen) == 1


def test_anonymous_login_form_passes_on_origin_or_fetch_metadata_alone(
    store: MemoryStore,
) -> None:
    """No session yet: a browser header vouches; without one, an anonymous token must."""
    app, _, _ = make_app(store)
    for headers in ({"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"}):
        client = app.test_client()
        r = client.post("/login", data={"user": "alice"}, headers=headers)
        assert r.status_code == 200, r.text
        assert client.get_cookie("sid") is not None  # logged in: a session now
    bare = app.test_client()
    r = bare.post("/login", data={"user": "alice"})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token missing\n"
    anonymous = bare.get("/token")
    assert bare.get_cookie("sid") is None  # rendering a token made no session
    assert "Set-Cookie" not in anonymous.headers
    passed = bare.post("/login", data={"user": "alice", "_csrf": anonymous.text})
    assert passed.status_code == 200, passed.text


def test_exempt_views_blueprints_and_paths_pass(store: MemoryStore) -> None:
    """``@csrf.exempt`` on a function, a view class or a Blueprint, and ``exempt_paths``."""
    app, _, seen = make_app(store, exempt_paths=["/submit"])
    client, _ = signed_in(app)
    evil = {"Origin": "https://evil.example"}
    assert client.post("/hooks/stripe", headers=evil).text == "hooked"
    assert client.post("/hooks/class", headers=evil).text == "class hook"
    assert client.post("/partner/ping", headers=evil).text == "pong"
    assert client.post("/submit", data={"title": "p"}, headers=evil).text == "saved"
    assert seen == ["hook", "submit:p"]
    with pytest.raises(TypeError, match="not its name"):
        CSRFProtect().exempt("stripe")


def test_json_clients_get_a_json_refusal(store: MemoryStore) -> None:
    """A JSON body or ``Accept: application/json`` gets ``{"detail": reason}``."""
    app, _, _ = make_app(store)
    client, _ = signed_in(app)
    for r in (
        client.post("/api", json={"a": 1}),
        client.post("/submit", data={"t": "1"}, headers={"Accept": "application/json"}),
    ):
        assert r.status_code == 403
        assert r.content_type == "application/json"
        assert r.get_json() == {"detail": "CSRF token missing"}


def test_token_rotates_with_the_session_on_login(store: MemoryStore) -> None:
    """After ``session.regenerate()`` the old token fails and the new session's one passes."""
    app, _, _ = make_app(store)
    client, old = signed_in(app)
    r = client.post("/login", data={"user": "bob", "_csrf": old})
    assert r.status_code == 200, r.text
    new = r.text
    refused = client.post("/submit", data={"_csrf": old})
    assert refused.status_code == 403
    assert refused.text == "Forbidden: CSRF token invalid\n"
    assert client.post("/submit", data={"_csrf": new}).status_code == 200
    assert client.post("/submit", data={"_csrf": client.get("/token").text}).status_code == 200


def test_a_new_session_is_stored_with_its_csrf_secret(store: MemoryStore) -> None:
    """Seeded as the response starts, so pages loaded next in parallel share one secret."""
    app, _, _ = make_app(store)
    client = app.test_client()
    client.get("/start")
    cookie = client.get_cookie("sid")
    assert cookie is not None
    record = store.sync.load(store_key(raw_id(cookie.value)))
    assert record is not None and record.get(CSRF_FIELD)


# -- the body cap ----------------------------------------------------------------------


def test_form_body_over_the_limit_gets_413_unread(store: MemoryStore) -> None:
    """Over ``max_body_size`` (from app.config here): the check's 413, token or not."""
    app, _, seen = make_app(store, config={"SESSIONWARE_CSRF_MAX_BODY_SIZE": 2048})
    client, token = signed_in(app)
    big = {"title": "x" * 4000, "_csrf": token}
    r = client.post("/submit", data=big)
    assert r.status_code == 413
    assert r.text == "Content Too Large: request body over this app's form limit of 2048 bytes\n"
    anonymous = app.test_client().post("/submit", data=big, headers=SAME)
    assert anonymous.status_code == 413
    assert client.post("/submit", data={"title": "small", "_csrf": token}).status_code == 200
    assert seen == ["submit:small"]


STREAMED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def stream(client: FlaskClient, body: bytes) -> Any:
    """POST ``body`` as a chunked form: no Content-Length, a server that ends the stream."""
    return client.post(
        "/submit",
        input_stream=io.BytesIO(body),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides=STREAMED,
    )


def test_streamed_form_body_over_the_limit_gets_413(store: MemoryStore) -> None:
    """No Content-Length: a body one byte past the cap is refused, one at the cap passes
    (werkzeug's capped stream alone would cut it short without a word)."""
    app, _, seen = make_app(store, max_body_size=2048)
    client, token = signed_in(app)
    head = f"_csrf={token}&title=".encode()
    at_cap = head + b"s" * (2048 - len(head))
    r = stream(client, at_cap + b"s")
    assert r.status_code == 413
    assert r.text == "Content Too Large: request body over this app's form limit of 2048 bytes\n"
    ok = stream(client, at_cap)
    assert ok.status_code == 200, ok.text
    assert seen == ["submit:" + "s" * (2048 - len(head))]


def test_apps_own_lower_limit_keeps_flasks_413(store: MemoryStore) -> None:
    """MAX_CONTENT_LENGTH under the check's cap is the app's own rule, answered Flask's way,
    streamed or not."""
    app, _, seen = make_app(store)
    app.config["MAX_CONTENT_LENGTH"] = 1500
    client, token = signed_in(app)
    r = client.post("/submit", data={"title": "x" * 2000, "_csrf": token})
    assert r.status_code == 413
    assert "form limit" not in r.text
    streamed = stream(client, f"_csrf={token}&title={'x' * 2000}".encode())
    assert streamed.status_code == 413
    assert "form limit" not in streamed.text
    assert client.post("/submit", data={"title": "s", "_csrf": token}).status_code == 200
    assert seen == ["submit:s"]


# -- configuration, hosts, modes -------------------------------------------------------


def test_options_come_from_app_config_or_keywords_once(store: MemoryStore) -> None:
    """``SESSIONWARE_CSRF_*`` settings work; an unknown one, or one given twice, stops init."""
    app, _, _ = make_app(store, config={"SESSIONWARE_CSRF_EXEMPT_PATHS": ["/submit"]})
    client, _ = signed_in(app)
    assert client.post("/submit", data={"title": "c"}).status_code == 200
    with pytest.raises(ConfigurationError, match="SESSIONWARE_CSRF_TRUSTED_ORIGINS"):
        make_app(store, config={"SESSIONWARE_CSRF_TRUSTED_ORIGIN": ["https://a.example"]})
    with pytest.raises(ConfigurationError, match="one place"):
        make_app(store, config={"SESSIONWARE_CSRF_REPORT_ONLY": True}, report_only=False)
    with pytest.raises(ConfigurationError, match="origin"):
        make_app(store, trusted_origins=["https://a.example/path"])
    with pytest.raises(ConfigurationError, match="unknown CSRFProtect option"):
        CSRFProtect(max_body=10)  # type: ignore[call-arg]


def test_without_sessionware_init_fails_with_the_fix() -> None:
    """CSRF needs sessionware's session: say so at start-up, not on the first POST."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    with pytest.raises(ConfigurationError, match=r"Sessionware\(app\) before CSRFProtect\(app\)"):
        CSRFProtect(app)


def test_installing_again_replaces_the_check_and_keeps_one_hook(store: MemoryStore) -> None:
    """A second CSRFProtect(app) (Sessionware may install one) reconfigures, hooks once."""
    app, _, _ = make_app(store)
    hooks = list(app.before_request_funcs[None])
    CSRFProtect(app, exempt_paths=["/submit"])
    assert app.before_request_funcs[None] == hooks  # judged from Sessionware's one hook
    client, _ = signed_in(app)
    assert client.post("/submit", data={"title": "again"}).status_code == 200


def test_host_not_allowed_is_refused_400_safe_methods_too(store: MemoryStore) -> None:
    """``allowed_hosts`` is judged before anything else, on every request."""
    app, _, _ = make_app(store, allowed_hosts=["example.com"])
    client = app.test_client()
    r = client.get("/token")
    assert r.status_code == 400
    assert r.text == "Bad Request: Host not allowed\n"
    ok = client.get("/token", headers={"Host": "example.com"})
    assert ok.status_code == 200


def test_report_only_logs_instead_of_refusing(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """report_only lets a 403 through and logs what it would have refused."""
    app, _, seen = make_app(store, report_only=True)
    client, _ = signed_in(app)
    with caplog.at_level(logging.WARNING, logger="sessionware.security"):
        assert client.post("/submit", data={"title": "r"}).status_code == 200
    assert "would refuse (report_only)" in caplog.text
    assert "CSRF token missing" in caplog.text
    assert seen == ["submit:r"]


def test_csrf_token_where_no_check_ran_refuses(store: MemoryStore) -> None:
    """A token nobody checks protects nothing: csrf_token() says what is missing."""
    app, _, _ = make_app(store)
    # In a request context the hooks have not run for: nothing is attached.
    with app.test_request_context("/token"), pytest.raises(RuntimeError, match="CSRFProtect"):
        csrf_token()


# -- a real threaded server ------------------------------------------------------------


def call(
    port: int, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], str]:
    """One request on its own connection: status, headers, text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


@pytest.fixture
def served(store: MemoryStore) -> Iterator[tuple[int, list[str]]]:
    """The app on a threaded werkzeug server on 127.0.0.1: its port and its ``seen``."""
    app, _, seen = make_app(store)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, seen
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def session_of(port: int) -> tuple[str, str]:
    """A new session's cookie and a token of it, over the wire."""
    status, headers, _ = call(port, "GET", "/start")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    status, _, token = call(port, "GET", "/token", Cookie=cookie)
    assert status == 200
    return cookie, token


def post_together(port: int, cookie: str, token: str, n: int = 16) -> list[int]:
    """``n`` form posts released at once from ``n`` threads; their statuses."""
    barrier = threading.Barrier(n)

    def one(i: int) -> int:
        body = json.dumps({"n": i}).encode()
        barrier.wait(timeout=10)
        status, _, _ = call(
            port,
            "POST",
            "/submit",
            f"_csrf={token}&title={i}".encode() if i % 2 else body,
            Cookie=cookie,
            **(
                {"Content-Type": "application/x-www-form-urlencoded"}
                if i % 2
                else {"Content-Type": "application/json", "X-CSRF-Token": token}
            ),
        )
        return status

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_parallel_posts_with_one_valid_token_all_pass(served: tuple[int, list[str]]) -> None:
    """16 requests of one session at once (form field and header): every one passes."""
    port, seen = served
    cookie, token = session_of(port)
    assert post_together(port, cookie, token) == [200] * 16
    assert len(seen) == 16


def test_parallel_posts_with_another_sessions_token_all_fail(
    served: tuple[int, list[str]],
) -> None:
    """16 requests at once with a token of another session: every one refused."""
    port, seen = served
    cookie, _ = session_of(port)
    _, other = session_of(port)
    assert post_together(port, cookie, other) == [403] * 16
    assert seen == []


def test_chunked_form_over_the_limit_is_refused_by_the_real_server(
    served: tuple[int, list[str]],
) -> None:
    """A chunked upload (no Content-Length) is cut off at the cap: 413, the view unrun."""
    port, seen = served
    cookie, token = session_of(port)
    body = f"_csrf={token}&title={'x' * (1024 * 1024)}".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/submit",
            body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
            headers={
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
                "Transfer-Encoding": "chunked",
            },
            encode_chunked=True,
        )
        r = conn.getresponse()
        assert r.status == 413
        assert "form limit of 1048576 bytes" in r.read().decode()
    finally:
        conn.close()
    assert seen == []
