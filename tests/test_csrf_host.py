"""``allowed_hosts`` on the CSRF middleware: a Host this app does not serve is refused
(400) before anything else, so the own origin is never built from a name an attacker
chose; and the host patterns themselves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware
from sessionware.csrf.host import AllowedHosts, addressed
from sessionware.exceptions import ConfigurationError
from sessionware.stores import MemoryStore

SECRET = "test-secret-0123456789-0123456789-abcdef"


def make_app(calls: list[str], *, trust_proxy: int = 0, **csrf: Any) -> Starlette:
    async def endpoint(request: Request) -> Response:
        calls.append(request.method)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/login", endpoint, methods=["GET", "POST"])])
    app.add_middleware(CSRFMiddleware, **csrf)
    app.add_middleware(
        SessionMiddleware,
        store=MemoryStore(development=True),
        secrets=[SECRET],
        trust_proxy=trust_proxy,
    )
    return app


def client(app: Starlette, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.mark.anyio
async def test_rebound_host_cannot_make_its_own_origin_pass() -> None:
    """Host and Origin both evil.example (DNS rebinding) pass the gate alone, but get 400 with
    allowed_hosts, for GET and POST, and the app is never called."""
    calls: list[str] = []
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"}
    async with client(make_app(calls), "http://evil.example") as c:
        assert (await c.post("/login", headers=evil, data={"u": "a"})).status_code == 200
    assert calls == ["POST"]  # without the setting the gate cannot tell
    calls.clear()
    app = make_app(calls, allowed_hosts=["app.example", "localhost"])
    async with client(app, "http://evil.example") as c:
        post = await c.post("/login", headers=evil, data={"u": "a"})
        get = await c.get("/login")
    assert (post.status_code, get.status_code) == (400, 400)
    assert "Host not allowed" in post.text
    assert calls == []


@pytest.mark.anyio
async def test_allowed_host_with_port_passes_and_is_its_own_origin() -> None:
    """An allowed host on any port is served, and a form from that very origin passes."""
    calls: list[str] = []
    app = make_app(calls, allowed_hosts=["app.example"])
    async with client(app, "http://app.example:8443") as c:
        same = {"Origin": "http://app.example:8443", "Sec-Fetch-Site": "same-origin"}
        ok = await c.post("/login", headers=same, data={"u": "a"})
        other = await c.post("/login", headers={"Origin": "http://app.example:9999"})
    assert (ok.status_code, other.status_code) == (200, 403)
    assert calls == ["POST"]


@pytest.mark.anyio
async def test_forwarded_host_is_the_one_checked_under_trust_proxy() -> None:
    """Behind a trusted proxy X-Forwarded-Host is checked (not the inner Host); without
    trust_proxy a client's X-Forwarded-Host is ignored."""
    calls: list[str] = []
    proxied = make_app(calls, trust_proxy=1, allowed_hosts=["app.example"])
    async with client(proxied, "http://internal:8000") as c:
        good = await c.get("/login", headers={"X-Forwarded-Host": "app.example"})
        bad = await c.get("/login", headers={"X-Forwarded-Host": "evil.example"})
    direct = make_app(calls, allowed_hosts=["app.example"])
    async with client(direct, "http://app.example") as c:
        spoof = await c.get("/login", headers={"X-Forwarded-Host": "evil.example"})
    assert (good.status_code, bad.status_code, spoof.status_code) == (200, 400, 200)


@pytest.mark.anyio
async def test_websocket_to_unknown_host_is_closed() -> None:
    """A WebSocket handshake to a host that is not allowed is closed before the app."""
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    app = SessionMiddleware(
        CSRFMiddleware(inner, allowed_hosts=["app.example"]),
        store=MemoryStore(development=True),
        secrets=[SECRET],
    )
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": [(b"host", b"evil.example")],
        "scheme": "ws",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert reached == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("app.example", True),
        ("APP.Example.:443", True),
        ("www.app.example", False),
        ("shop.example.org", True),
        ("example.org", True),
        ("badexample.org", False),
        ("[::1]:8000", True),
        ("127.0.0.1", True),
        ("evil.example", False),
        ("app.example@evil.example", False),
        ("app.example/", False),
        ("", False),
        (None, False),
    ],
)
def test_host_patterns(host: str | None, expected: bool) -> None:
    """Exact names, '.domain' for a domain and its subdomains, IPv6 literals; ports ignored."""
    allowed = AllowedHosts(["app.example", ".example.org", "[::1]", "127.0.0.1"])
    assert allowed.allows(host) is expected


def test_star_allows_any_well_formed_host() -> None:
    """'*' allows every well-formed host, and still refuses a malformed one."""
    assert AllowedHosts(["*"]).allows("anything.example:1")
    assert not AllowedHosts(["*"]).allows("bad host")


def test_addressed_reads_forwarded_only_when_trusted() -> None:
    """addressed() believes X-Forwarded-Host/Proto only under trust_proxy."""
    headers = [
        (b"host", b"inner:8000"),
        (b"x-forwarded-host", b"app.example"),
        (b"x-forwarded-proto", b"https"),
    ]
    assert addressed(headers, 0) == (None, "inner:8000")
    assert addressed(headers, 1) == ("https", "app.example")
    spoofed = [(b"x-forwarded-host", b"evil.example"), *headers]  # a client's line, then ours
    assert addressed(spoofed, 1) == ("https", "app.example")


def test_two_host_lines_are_never_allowed() -> None:
    """Two Host lines (RFC 9112 §3.2 allows one) read as one joined value no pattern matches."""
    host = addressed([(b"host", b"app.example"), (b"host", b"evil.example")], 0)[1]
    assert host is not None and not AllowedHosts(["app.example", "*"]).allows(host)


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ("app.example", "not one string"),
        ([], "empty"),
        (["https://app.example"], "not a host name"),
        (["app.example:8000"], "not a host name"),
        (["*.app.example"], "'.example.com'"),
        ([" app.example"], "not a host name"),
    ],
)
def test_bad_allowed_hosts_fail_at_construction(hosts: Any, message: str) -> None:
    """A malformed allowed_hosts raises ConfigurationError at construction, saying the fix."""
    with pytest.raises(ConfigurationError, match=message):
        CSRFMiddleware(make_app([]), allowed_hosts=hosts)
