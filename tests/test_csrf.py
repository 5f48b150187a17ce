"""Tests for sessionware.csrf: the origin gate, session tokens, anonymous tokens, exemptions."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware, csrf_exempt, csrf_input, csrf_token, install_jinja
from sessionware.csrf.gate import gate, normalize_origin, own_origin
from sessionware.csrf.token import ANON_SALT, decode_secret, matches, verify_anonymous
from sessionware.exceptions import ConfigurationError
from sessionware.session import CSRF_FIELD
from sessionware.signing import Signer
from sessionware.stores import MemoryStore

SECRET = "test-secret-0123456789-0123456789-abcdef"
BASE = "https://testserver"
SAME = {"Sec-Fetch-Site": "same-origin", "Origin": BASE}
VECTORS = Path(__file__).parent / "vectors"
ROOT = Path(__file__).parents[1]


class Clock:
    """A settable clock shared by the session config and the store."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the app under test ---------------------------------------------------------------


async def form_page(request: Request) -> Response:
    return PlainTextResponse(csrf_token(request))


async def start(request: Request) -> Response:
    request.session["n"] = 1
    return PlainTextResponse(csrf_token(request))


async def login(request: Request) -> Response:
    await request.session.regenerate()
    request.session["user"] = request.query_params.get("user", "alice")
    return PlainTextResponse("in")


async def echo_form(request: Request) -> Response:
    out = {}
    async with request.form() as form:
        for k, v in form.multi_items():
            out[k] = v if isinstance(v, str) else (await v.read()).decode()
    return JSONResponse(out)


async def echo_raw(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)}:{hash(body)}")


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def has_secret(request: Request) -> Response:
    return PlainTextResponse("yes" if request.session.get_meta(CSRF_FIELD) else "no")


@csrf_exempt
async def hook(request: Request) -> Response:
    return PlainTextResponse("hooked")


def make_app(
    *, clock: Clock | None = None, session: dict[str, Any] | None = None, **csrf: Any
) -> Starlette:
    mounted = Starlette(routes=[Route("/inner-hook", hook, methods=["POST"])])
    app = Starlette(
        routes=[
            Route("/form", form_page),
            Route("/start", start, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/echo", echo_form, methods=["POST"]),
            Route("/raw", echo_raw, methods=["POST"]),
            Route("/thing", ok, methods=["GET", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/has-secret", has_secret),
            Route("/hook", hook, methods=["POST"]),
            Route("/webhooks/{name}", ok, methods=["POST"]),
            Route("/exact", ok, methods=["POST"]),
            Mount("/sub", mounted),
        ]
    )
    app.add_middleware(CSRFMiddleware, **csrf)
    options: dict[str, Any] = {"secrets": [SECRET]}
    if clock is not None:
        options["clock"] = clock
    options.update(session or {})
    store = MemoryStore(development=True, clock=clock) if clock else MemoryStore(development=True)
    app.add_middleware(SessionMiddleware, store=store, **options)
    return app


def client_for(app: Any, base: str = BASE) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app(exempt_paths=["/exact", "/webhooks/*"])) as c:
        yield c


async def start_session(c: httpx.AsyncClient) -> str:
    """Create a session (an anonymous same-origin POST may) and return its token."""
    r = await c.post("/start", headers=SAME)
    assert r.status_code == 200 and "set-cookie" in r.headers
    return r.text


# -- safe methods ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_never_checked(client: httpx.AsyncClient, method: str) -> None:
    """GET, HEAD and OPTIONS pass even cross-site, with a session and without any token."""
    await start_session(client)
    r = await client.request(
        method, "/thing", headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    )
    assert r.status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unsafe_methods_need_token(client: httpx.AsyncClient, method: str) -> None:
    """Every unsafe method of a session needs the token, and passes with it."""
    token = await start_session(client)
    assert (await client.request(method, "/thing", headers=SAME)).status_code == 403
    r = await client.request(method, "/thing", headers={**SAME, "X-CSRF-Token": token})
    assert r.status_code == 200


# -- anonymous visitors (login CSRF) --------------------------------------------------


@pytest.mark.anyio
async def test_anonymous_form_view_sets_no_cookie(client: httpx.AsyncClient) -> None:
    """Rendering a token for a visitor with no session creates no session and no cookie."""
    r = await client.get("/form")
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert r.text.count(".") == 2  # the anonymous format, not a session token


@pytest.mark.anyio
async def test_anonymous_post_same_origin_accepted_without_token(
    client: httpx.AsyncClient,
) -> None:
    """A login-form POST with no session passes on Sec-Fetch-Site: same-origin alone."""
    r = await client.post("/thing", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    assert "set-cookie" not in r.headers


@pytest.mark.anyio
async def test_anonymous_post_matching_origin_accepted(client: httpx.AsyncClient) -> None:
    """With no Sec-Fetch-Site (older Safari), a matching Origin vouches for a no-session POST."""
    assert (await client.post("/thing", headers={"Origin": BASE})).status_code == 200


@pytest.mark.anyio
async def test_anonymous_post_cross_site_refused(client: httpx.AsyncClient) -> None:
    """A cross-site POST to a login form is refused even with a valid anonymous token."""
    token = (await client.get("/form")).text
    r = await client.post(
        "/thing",
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        data={"_csrf": token},
    )
    assert r.status_code == 403
    assert "cross-site" in r.text


@pytest.mark.anyio
async def test_headerless_anonymous_post_without_token_refused(
    client: httpx.AsyncClient,
) -> None:
    """No session and neither Origin nor Sec-Fetch-Site: without a token it is refused."""
    r = await client.post("/thing", data={"user": "a"})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token missing\n"


@pytest.mark.anyio
async def test_headerless_anonymous_post_with_anonymous_token_accepted(
    client: httpx.AsyncClient,
) -> None:
    """The same header-less POST passes with the anonymous token its form carried."""
    token = (await client.get("/form")).text
    r = await client.post("/echo", data={"_csrf": token, "user": "a"})
    assert r.status_code == 200
    assert r.json()["user"] == "a"
    r = await client.post("/thing", headers={"X-CSRF-Token": token})
    assert r.status_code == 200


@pytest.mark.anyio
async def test_headerless_anonymous_post_with_forged_token_refused(
    client: httpx.AsyncClient,
) -> None:
    """An anonymous token signed under another secret is refused."""
    forged = Signer(["another-secret-0123456789-0123456789-xyz"], salt=ANON_SALT).sign(
        "1700000000.AAAAAAAAAAAAAAAA"
    )
    r = await client.post("/thing", headers={"X-CSRF-Token": forged})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token invalid or expired\n"


@pytest.mark.anyio
async def test_expired_anonymous_token_refused() -> None:
    """An anonymous token older than anonymous_max_age is refused; a fresh one passes."""
    clock = Clock()
    async with client_for(make_app(clock=clock, anonymous_max_age=600)) as c:
        token = (await c.get("/form")).text
        clock.now += 599
        assert (await c.post("/thing", headers={"X-CSRF-Token": token})).status_code == 200
        clock.now += 2
        r = await c.post("/thing", headers={"X-CSRF-Token": token})
        assert r.status_code == 403
        assert "expired" in r.text


@pytest.mark.anyio
async def test_anonymous_token_refused_once_a_session_exists(client: httpx.AsyncClient) -> None:
    """An anonymous token is no good on a request that belongs to a session."""
    anon = (await client.get("/form")).text
    await start_session(client)
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": anon})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token from before this session\n"


# -- session tokens ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_session_post_without_token_refused(client: httpx.AsyncClient) -> None:
    """A session's POST with a perfect same-origin pedigree but no token is refused."""
    await start_session(client)
    r = await client.post("/thing", headers=SAME)
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token missing\n"


@pytest.mark.anyio
async def test_session_post_with_wrong_token_refused(client: httpx.AsyncClient) -> None:
    """A well-formed token that was never rendered for this session is refused."""
    token = await start_session(client)
    wrong = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": wrong})
    assert r.status_code == 403
    assert r.text == "Forbidden: CSRF token invalid\n"
    assert wrong not in r.text and token not in r.text


@pytest.mark.anyio
async def test_token_from_another_session_refused() -> None:
    """A token rendered for one visitor's session is refused in another visitor's session."""
    app = make_app()
    async with client_for(app) as mallory, client_for(app) as alice:
        mallory_token = await start_session(mallory)
        alice_token = await start_session(alice)
        bad = await alice.post("/thing", headers={**SAME, "X-CSRF-Token": mallory_token})
        assert bad.status_code == 403
        good = await alice.post("/thing", headers={**SAME, "X-CSRF-Token": alice_token})
        assert good.status_code == 200


@pytest.mark.anyio
async def test_token_from_before_regenerate_refused(client: httpx.AsyncClient) -> None:
    """After login (regenerate) the old session's token is refused and a new one works."""
    before = await start_session(client)
    r = await client.post("/login", headers={**SAME, "X-CSRF-Token": before})
    assert r.status_code == 200
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": before})
    assert r.status_code == 403
    after = (await client.get("/form")).text
    assert after.count(".") == 0  # a session token now
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": after})
    assert r.status_code == 200


@pytest.mark.anyio
async def test_token_of_another_user_refused_after_login() -> None:
    """Two users logged in from one anonymous start end with tokens that don't cross."""
    app = make_app()
    async with client_for(app) as a, client_for(app) as b:
        await a.post("/login?user=alice", headers=SAME)
        await b.post("/login?user=bob", headers=SAME)
        ta = (await a.get("/form")).text
        tb = (await b.get("/form")).text
        assert (await a.post("/thing", headers={**SAME, "X-CSRF-Token": tb})).status_code == 403
        assert (await a.post("/thing", headers={**SAME, "X-CSRF-Token": ta})).status_code == 200


@pytest.mark.anyio
async def test_login_session_created_with_secret(client: httpx.AsyncClient) -> None:
    """A session created at login already holds its CSRF secret, before any token is rendered."""
    await client.post("/login", headers=SAME)
    assert (await client.get("/has-secret")).text == "yes"


@pytest.mark.anyio
async def test_two_renders_differ_and_both_valid(client: httpx.AsyncClient) -> None:
    """Tokens are masked afresh per render (BREACH): different text, both accepted."""
    await start_session(client)
    t1 = (await client.get("/form")).text
    t2 = (await client.get("/form")).text
    assert t1 != t2
    for t in (t1, t2):
        assert (await client.post("/thing", headers={**SAME, "X-CSRF-Token": t})).status_code == 200


@pytest.mark.anyio
async def test_token_in_urlencoded_field_accepted_and_body_intact(
    client: httpx.AsyncClient,
) -> None:
    """The _csrf form field is accepted and the app still reads the whole form."""
    token = await start_session(client)
    r = await client.post("/echo", headers=SAME, data={"note": "héllo & bye", "_csrf": token})
    assert r.status_code == 200
    assert r.json() == {"note": "héllo & bye", "_csrf": token}


@pytest.mark.anyio
async def test_token_in_multipart_field_accepted_and_body_intact(
    client: httpx.AsyncClient,
) -> None:
    """A multipart form with the _csrf field passes and the app still reads fields and files."""
    token = await start_session(client)
    r = await client.post(
        "/echo",
        headers=SAME,
        data={"_csrf": token, "note": "n"},
        files={"upload": ("a.txt", b"file body \r\n--not-a-boundary", "text/plain")},
    )
    assert r.status_code == 200
    assert r.json() == {"_csrf": token, "note": "n", "upload": "file body \r\n--not-a-boundary"}


@pytest.mark.anyio
async def test_multipart_without_token_refused(client: httpx.AsyncClient) -> None:
    """A multipart form without the field is refused, and a file named _csrf does not count."""
    token = await start_session(client)
    r = await client.post("/echo", headers=SAME, data={"note": "n"}, files={"f": b"x"})
    assert r.status_code == 403
    r = await client.post("/echo", headers=SAME, files={"_csrf": ("t.txt", token.encode())})
    assert r.status_code == 403


@pytest.mark.anyio
async def test_header_token_takes_precedence_over_field(client: httpx.AsyncClient) -> None:
    """A present but wrong header token is refused even if the form field is right."""
    token = await start_session(client)
    r = await client.post(
        "/echo", headers={**SAME, "X-CSRF-Token": "x" * 86}, data={"_csrf": token}
    )
    assert r.status_code == 403
    r = await client.post("/echo", headers={**SAME, "X-CSRF-Token": token}, data={"a": "b"})
    assert r.status_code == 200 and r.json() == {"a": "b"}


@pytest.mark.anyio
async def test_raw_body_replayed_byte_for_byte(client: httpx.AsyncClient) -> None:
    """After the token check reads a form body, the app receives exactly the same bytes."""
    token = await start_session(client)
    body = f"_csrf={token}&blob=".encode() + b"%00%FF" * 5000
    r = await client.post(
        "/raw",
        headers={**SAME, "content-type": "application/x-www-form-urlencoded"},
        content=body,
    )
    assert r.status_code == 200
    assert r.text == f"{len(body)}:{hash(body)}"


@pytest.mark.anyio
async def test_streamed_form_body_read_and_replayed(client: httpx.AsyncClient) -> None:
    """A form sent in several chunks is buffered for the check and replayed whole."""
    token = await start_session(client)
    parts = [f"_csrf={token}".encode(), b"&x=", b"y" * 70000]

    async def stream() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    r = await client.post(
        "/raw",
        headers={**SAME, "content-type": "application/x-www-form-urlencoded"},
        content=stream(),
    )
    body = b"".join(parts)
    assert r.status_code == 200
    assert r.text == f"{len(body)}:{hash(body)}"


@pytest.mark.anyio
async def test_form_over_cap_refused_even_with_header_token(client: httpx.AsyncClient) -> None:
    """A form body over max_body_size gets 413, with the token in a field or in the header."""
    token = await start_session(client)
    big = {"_csrf": token, "blob": "z" * (1024 * 1024 + 10)}
    r = await client.post("/echo", headers=SAME, data=big)
    assert r.status_code == 413
    assert "1048576 bytes" in r.text
    r = await client.post("/raw", headers={**SAME, "X-CSRF-Token": token}, data=big)
    assert r.status_code == 413
    big["blob"] = "z" * (1024 * 1024 - 200)  # just under the cap: read, checked, replayed
    r = await client.post("/raw", headers={**SAME, "X-CSRF-Token": token}, data=big)
    assert r.status_code == 200


@pytest.mark.anyio
async def test_json_body_needs_header(client: httpx.AsyncClient) -> None:
    """A JSON body is never searched for a token: the header carries it."""
    token = await start_session(client)
    r = await client.post("/thing", headers=SAME, json={"_csrf": token})
    assert r.status_code == 403
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": token}, json={})
    assert r.status_code == 200


# -- the origin gate ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_cross_site_fetch_metadata_refused(client: httpx.AsyncClient) -> None:
    """Sec-Fetch-Site: cross-site is refused even with a valid session token."""
    token = await start_session(client)
    headers = {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token}
    r = await client.post("/thing", headers=headers)
    assert r.status_code == 403
    assert r.text == "Forbidden: cross-site request refused (Sec-Fetch-Site)\n"


@pytest.mark.anyio
async def test_same_site_refused_by_default() -> None:
    """Sec-Fetch-Site: same-site (a sibling subdomain) is refused unless allow_same_site."""
    headers = {"Sec-Fetch-Site": "same-site", "Origin": "https://blog.testserver"}
    async with client_for(make_app()) as c:
        token = await start_session(c)
        r = await c.post("/thing", headers={**headers, "X-CSRF-Token": token})
        assert r.status_code == 403
        assert "same-site" in r.text
    async with client_for(make_app(allow_same_site=True)) as c:
        token = await start_session(c)
        r = await c.post("/thing", headers={**headers, "X-CSRF-Token": token})
        assert r.status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("https://evil.example", "request from another origin refused (Origin)"),
        ("https://testserver.evil.example", "request from another origin refused (Origin)"),
        ("http://testserver", "request from another origin refused (Origin)"),
        ("https://testserver:8443", "request from another origin refused (Origin)"),
        ("null", "request with Origin: null refused"),
        ("https://testserver/path", "malformed Origin header refused"),
    ],
)
async def test_foreign_or_null_origin_refused(
    client: httpx.AsyncClient, origin: str, reason: str
) -> None:
    """An Origin that is not exactly this app's origin is refused, token or not."""
    token = await start_session(client)
    r = await client.post("/thing", headers={"Origin": origin, "X-CSRF-Token": token})
    assert r.status_code == 403
    assert r.text == f"Forbidden: {reason}\n"


@pytest.mark.anyio
async def test_own_origin_with_default_port_accepted(client: httpx.AsyncClient) -> None:
    """An Origin spelling the default port or upper case still matches this app."""
    token = await start_session(client)
    for origin in ("https://testserver:443", "HTTPS://TestServer"):
        r = await client.post("/thing", headers={"Origin": origin, "X-CSRF-Token": token})
        assert r.status_code == 200


@pytest.mark.anyio
async def test_trusted_origin_accepted() -> None:
    """An origin in trusted_origins passes even as cross-site; the token is still needed."""
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://admin.example"}
    async with client_for(make_app(trusted_origins=["https://admin.example"])) as c:
        token = await start_session(c)
        assert (await c.post("/thing", headers=headers)).status_code == 403
        r = await c.post("/thing", headers={**headers, "X-CSRF-Token": token})
        assert r.status_code == 200
        r = await c.post("/thing", headers={**headers, "Origin": "https://other.example",
                                            "X-CSRF-Token": token})
        assert r.status_code == 403


@pytest.mark.anyio
async def test_forwarded_origin_only_with_trust_proxy() -> None:
    """X-Forwarded-Proto/Host define the app's origin only when trust_proxy is set."""
    headers = {
        "Origin": "https://public.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "public.example",
    }
    for trust, expected in ((0, 403), (1, 200)):
        app = make_app(session={"trust_proxy": trust, "cookie_name": "sid"})
        async with client_for(app, "http://internal:8000") as c:
            r = await c.post("/thing", headers=headers)
            assert r.status_code == expected


@pytest.mark.anyio
async def test_refusal_logged_without_token(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal is logged on sessionware.security, naming the reason but never the token."""
    token = await start_session(client)
    sid = client.cookies.get("__Host-sid") or ""
    caplog.set_level(logging.WARNING, logger="sessionware.security")
    wrong = token[::-1]
    r = await client.post("/thing", headers={**SAME, "X-CSRF-Token": wrong})
    assert r.status_code == 403
    records = [r for r in caplog.records if r.name == "sessionware.security"]
    assert len(records) == 1
    text = records[0].getMessage()
    assert "CSRF token invalid" in text and "/thing" in text
    assert wrong not in text and token not in text and sid.split(".")[0] not in text


@pytest.mark.anyio
async def test_report_only_logs_but_lets_through(caplog: pytest.LogCaptureFixture) -> None:
    """report_only=True logs what it would refuse and lets the request reach the app."""
    caplog.set_level(logging.WARNING, logger="sessionware.security")
    async with client_for(make_app(report_only=True)) as c:
        r = await c.post("/echo", headers={"Sec-Fetch-Site": "cross-site"}, data={"a": "b"})
        assert r.status_code == 200 and r.json() == {"a": "b"}
    assert any("would refuse" in rec.getMessage() for rec in caplog.records)


# -- exemptions --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_exempt_paths_skip_checks(client: httpx.AsyncClient) -> None:
    """Exact and prefix exempt_paths pass cross-site without a token; others do not."""
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://stripe.example"}
    await start_session(client)
    assert (await client.post("/exact", headers=cross)).status_code == 200
    assert (await client.post("/webhooks/stripe", headers=cross)).status_code == 200
    assert (await client.post("/thing", headers=cross)).status_code == 403


@pytest.mark.anyio
async def test_exempt_prefix_ignores_dot_segments() -> None:
    """A prefix exemption does not cover a path with dot segments another layer might resolve."""
    app = make_app(exempt_paths=["/webhooks/*"])
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # Sent raw: httpx would resolve the dot segments before the request left.
    for path in ("/webhooks/../thing", "/webhooks//x"):
        scope = {"type": "http", "method": "POST", "path": path, "scheme": "https",
                 "headers": [(b"host", b"testserver"), (b"sec-fetch-site", b"cross-site")]}
        sent.clear()
        await app(scope, receive, send)
        assert sent[0]["status"] == 403, path


@pytest.mark.anyio
async def test_decorated_endpoint_exempt(client: httpx.AsyncClient) -> None:
    """@csrf_exempt on a Starlette endpoint (also inside a Mount) skips the checks."""
    cross = {"Sec-Fetch-Site": "cross-site"}
    await start_session(client)
    assert (await client.post("/hook", headers=cross)).text == "hooked"
    assert (await client.post("/sub/inner-hook", headers=cross)).text == "hooked"


@pytest.mark.anyio
async def test_decorated_fastapi_endpoint_exempt() -> None:
    """@csrf_exempt works on a FastAPI route; an unmarked route beside it is still guarded."""
    api = FastAPI()

    @api.post("/hook")
    @csrf_exempt
    async def fa_hook() -> dict[str, str]:
        return {"ok": "hook"}

    @api.post("/guarded")
    async def guarded() -> dict[str, str]:
        return {"ok": "guarded"}

    api.add_middleware(CSRFMiddleware)
    api.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with client_for(api) as c:
        cross = {"Sec-Fetch-Site": "cross-site"}
        assert (await c.post("/hook", headers=cross)).json() == {"ok": "hook"}
        assert (await c.post("/guarded", headers=cross)).status_code == 403


@pytest.mark.anyio
async def test_exempt_routes_logged_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    """The first event (lifespan start-up) logs the exempt paths and routes at debug level."""
    caplog.set_level(logging.DEBUG, logger="sessionware")
    app = make_app(exempt_paths=["/exact", "/webhooks/*"])
    async with client_for(app) as c:
        await c.get("/form")
    lines = [r.getMessage() for r in caplog.records if "CSRF checks skipped" in r.getMessage()]
    assert len(lines) == 1
    assert "/exact" in lines[0] and "/webhooks/*" in lines[0]
    assert "/hook" in lines[0] and "/sub/inner-hook" in lines[0]


# -- templates and helpers ------------------------------------------------------------------


@pytest.mark.anyio
async def test_jinja_helpers_render_usable_token() -> None:
    """install_jinja's csrf_input renders a hidden field whose token the middleware accepts."""
    env = Environment(autoescape=True)
    install_jinja(env)
    template = env.from_string("<form>{{ csrf_input(request) }}</form>|{{ csrf_token(request) }}")

    async def page(request: Request) -> Response:
        return PlainTextResponse(template.render(request=request))

    app = make_app(field_name="tok")
    app.router.routes.append(Route("/page", page))
    async with client_for(app) as c:
        await start_session(c)
        html = (await c.get("/page")).text
        pattern = r'<form><input type="hidden" name="tok" value="([\w-]{86})"></form>\|[\w-]{86}'
        m = re.fullmatch(pattern, html)
        assert m is not None
        r = await c.post("/echo", headers=SAME, data={"tok": m.group(1)})
        assert r.status_code == 200


@pytest.mark.anyio
async def test_csrf_token_without_middleware_raises() -> None:
    """csrf_token() refuses to make tokens nobody checks, and the middleware needs sessions."""
    seen: list[str] = []

    async def page(request: Request) -> Response:
        try:
            csrf_token(request)
        except RuntimeError as exc:
            seen.append(str(exc))
        return PlainTextResponse("x")

    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with client_for(app) as c:
        await c.get("/")
    assert seen and "CSRFMiddleware" in seen[0]

    bare = Starlette(routes=[Route("/", page)])
    bare.add_middleware(CSRFMiddleware)
    transport = httpx.ASGITransport(app=bare, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            await c.get("/")


@pytest.mark.anyio
async def test_csrf_input_escapes_field_name() -> None:
    """csrf_input writes the configured field name HTML-escaped, with no session created."""

    async def page(request: Request) -> Response:
        return PlainTextResponse(csrf_input(request))

    app = make_app(field_name='x"y')
    app.router.routes.append(Route("/input", page))
    async with client_for(app) as c:
        r = await c.get("/input")
    assert r.text.startswith('<input type="hidden" name="x&quot;y" value="')
    assert "set-cookie" not in r.headers


@pytest.mark.anyio
async def test_client_disconnect_during_body_does_not_call_app() -> None:
    """If the client goes away while the form is buffered, the app is not called."""
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(1)

    stack = SessionMiddleware(CSRFMiddleware(app), store=MemoryStore(development=True),
                              secrets=[SECRET])
    messages = [{"type": "http.request", "body": b"_csrf=", "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "scheme": "https",
             "headers": [(b"host", b"testserver"),
                         (b"content-type", b"application/x-www-form-urlencoded")]}
    await stack(scope, receive, send)
    assert called == [] and sent == []


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trusted_origins": "https://a.example"}, "not one string"),
        ({"trusted_origins": ["https://a.example/"]}, "no path"),
        ({"trusted_origins": ["a.example"]}, "scheme://host"),
        ({"exempt_paths": ["hooks"]}, "starting with /"),
        ({"max_body_size": 10}, "at least 1024"),
        ({"header_name": "X CSRF"}, "not a valid header"),
        ({"field_name": ""}, "field_name"),
        ({"anonymous_max_age": 0}, "anonymous_max_age"),
        ({"allow_same_site": "yes"}, "True or False"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """Every bad option raises ConfigurationError at construction, saying what to fix."""
    with pytest.raises(ConfigurationError, match=message):
        CSRFMiddleware(ok, **options)


def test_unknown_option_is_a_type_error() -> None:
    """A misspelt option fails loudly instead of being ignored."""
    with pytest.raises(TypeError):
        CSRFMiddleware(ok, trusted_origin=["https://a.example"])  # type: ignore[call-arg]


# -- pure pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://Example.COM", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://user@example.com", None),
        ("https://example.com/", None),
        ("https://example.com?x", None),
        ("https://exa mple.com", None),
        ("https://example.com:99999", None),
        ("null", None),
        ("", None),
    ],
)
def test_normalize_origin(text: str, expected: str | None) -> None:
    """Origins compare in one canonical spelling; anything with a path or userinfo is not one."""
    assert normalize_origin(text) == expected


def test_own_origin_uses_rightmost_trusted_hop() -> None:
    """With trust_proxy=1 the last X-Forwarded-Host entry counts, not a client-supplied first."""
    headers = [(b"host", b"internal:8000"), (b"x-forwarded-host", b"evil.example, app.example"),
               (b"x-forwarded-proto", b"https")]
    assert own_origin("http", headers, None, 1) == "https://app.example"
    assert own_origin("http", headers, None, 0) == "http://internal:8000"
    assert own_origin("http", [], ("10.0.0.1", 8000), 0) == "http://10.0.0.1:8000"


def test_gate_unknown_fetch_site_refused() -> None:
    """An unrecognised Sec-Fetch-Site value is refused; 'none' (user navigation) passes."""
    common: dict[str, Any] = {"origin": None, "own": BASE, "trusted": frozenset(),
                              "allow_same_site": False}
    assert gate(fetch_site="bogus", **common).refused is not None
    none = gate(fetch_site="none", **common)
    assert none.refused is None and none.vouched


def test_csrf_token_vectors() -> None:
    """Every vector in tests/vectors/csrf_tokens.json verifies (or fails) as recorded."""
    doc = json.loads((VECTORS / "csrf_tokens.json").read_text())
    signer = Signer(doc["secrets"], salt=ANON_SALT)
    assert len(doc["cases"]) >= 20
    for case in doc["cases"]:
        if case["kind"] == "session":
            got = matches(case["token"], decode_secret(case["secret"]))
        else:
            got = verify_anonymous(signer, case["token"], case["now"], doc["max_age"])
        assert got is case["valid"], case["name"]


def test_csrf_vectors_match_generator() -> None:
    """The vector file is what make_csrf_vectors.py builds: the format has not drifted."""
    gen = _load(VECTORS / "make_csrf_vectors.py", "make_csrf_vectors")
    doc = json.loads((VECTORS / "csrf_tokens.json").read_text())
    assert gen.build() == doc


# -- as a new user would: the example app ------------------------------------------------------


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example() -> Callable[[], Any]:
    module = _load(ROOT / "examples" / "csrf_form_app.py", "csrf_form_app")
    return lambda: module.create_app(MemoryStore(development=True), SECRET)


def _hidden(html: str) -> str:
    m = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert m is not None
    return m.group(1)


@pytest.mark.anyio
async def test_example_form_app_browser_flow(example: Callable[[], Any]) -> None:
    """The example's forms work for a same-origin browser and refuse a cross-site post."""
    origin = "http://testserver"
    browser = {"Sec-Fetch-Site": "same-origin", "Origin": origin}
    async with client_for(example(), origin) as c:
        r = await c.get("/")
        assert "Log in" in r.text and "set-cookie" not in r.headers
        form = {"user": "alice", "_csrf": _hidden(r.text)}
        r = await c.post("/login", headers=browser, data=form)
        assert r.status_code == 303 and "sid=" in r.headers["set-cookie"]
        page = (await c.get("/")).text
        assert "Signed in as alice" in page
        r = await c.post("/notes", headers=browser, data={"text": "milk", "_csrf": _hidden(page)})
        assert r.status_code == 303
        assert "<li>milk</li>" in (await c.get("/")).text
        evil = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
        r = await c.post("/notes", headers=evil, data={"text": "spam", "_csrf": _hidden(page)})
        assert r.status_code == 403
        r = await c.post("/notes", headers=browser, data={"text": "spam"})
        assert r.status_code == 403
        assert "spam" not in (await c.get("/")).text
        assert (await c.post("/hooks/ping", headers=evil)).text == "pong"


@pytest.mark.anyio
async def test_example_json_api_client(example: Callable[[], Any]) -> None:
    """A script (no Origin, no Fetch-Metadata) logs in and posts JSON using the header token."""
    async with client_for(example(), "http://testserver") as api:
        anon = (await api.get("/api/csrf")).json()["token"]
        assert "set-cookie" not in (await api.get("/api/csrf")).headers
        assert (await api.post("/login", data={"user": "bot"})).status_code == 403
        r = await api.post("/login", data={"user": "bot"}, headers={"X-CSRF-Token": anon})
        assert r.status_code == 303
        token = (await api.get("/api/csrf")).json()["token"]
        assert (await api.post("/api/notes", json={"text": "a"})).status_code == 403
        r = await api.post("/api/notes", json={"text": "a"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json() == {"notes": ["a"]}
        r = await api.post("/api/notes", json={"text": "b"}, headers={"X-CSRF-Token": anon})
        assert r.status_code == 403


def test_public_names_pinned() -> None:
    """sessionware.csrf exports exactly its documented public names."""
    import sessionware.csrf as module

    assert sorted(module.__all__) == sorted(
        ["SAFE_METHODS", "CSRFMiddleware", "csrf_exempt", "csrf_input", "csrf_token",
         "install_jinja"]
    )


def test_import_loads_no_optional_dependency() -> None:
    """Importing sessionware.csrf loads neither jinja2 nor markupsafe (optional), and does
    load python-multipart (a dependency: a broken install fails at start-up, not as a
    silent 403 on the first multipart form)."""
    import subprocess
    import sys

    code = (
        "import sys, sessionware.csrf; "
        "print([m for m in ('jinja2', 'markupsafe', 'python_multipart') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['python_multipart']"


# -- WebSocket handshakes (cross-site WebSocket hijacking) ------------------------------


async def _handshake(headers: list[tuple[bytes, bytes]], path: str = "/ws") -> list[dict[str, Any]]:
    """Drive one WebSocket handshake through a real app; return what the app sent."""
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/hook", echo)])
    app.add_middleware(CSRFMiddleware, exempt_paths=["/hook"])
    app.add_middleware(
        SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET]
    )
    scope = {
        "type": "websocket",
        "scheme": "wss",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 443),
        "subprotocols": [],
        "asgi": {"version": "3.0"},
    }
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_websocket_from_another_origin_is_refused() -> None:
    """A cross-origin page cannot open a WebSocket that rides the user's cookie."""
    sent = await _handshake([(b"origin", b"https://evil.example")])
    assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.anyio
async def test_websocket_cross_site_fetch_metadata_is_refused() -> None:
    """Sec-Fetch-Site: cross-site on a handshake is refused like on a POST."""
    sent = await _handshake([(b"sec-fetch-site", b"cross-site")])
    assert sent[0]["type"] == "websocket.close"


@pytest.mark.anyio
async def test_websocket_from_own_origin_is_accepted() -> None:
    """The app's own pages (wss origin = https origin) open their WebSocket normally."""
    sent = await _handshake(
        [(b"origin", b"https://testserver"), (b"sec-fetch-site", b"same-origin")]
    )
    assert sent[0]["type"] == "websocket.accept"
    assert {"type": "websocket.send", "text": "hello"} in [
        {k: v for k, v in m.items() if k in ("type", "text")} for m in sent
    ]


@pytest.mark.anyio
async def test_websocket_exempt_path_skips_the_origin_check() -> None:
    """An exempt path accepts handshakes from other origins (for deliberate cross-origin use)."""
    sent = await _handshake([(b"origin", b"https://evil.example")], path="/hook")
    assert sent[0]["type"] == "websocket.accept"
