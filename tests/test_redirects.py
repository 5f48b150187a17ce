"""``sessionware.redirects``: a safe ``next``, the login URL, and "login required"
answered as a redirect for pages and a 401 for API calls, on Starlette, FastAPI and
Flask."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import require_user
from sessionware.exceptions import LoginRequiredError
from sessionware.fastapi import user_dependencies
from sessionware.flask import Sessionware, current_view
from sessionware.redirects import is_local_path, login_redirect, login_url, safe_next
from sessionware.stores import MemoryStore
from sessionware.testing import login_as
from tests.helpers import SECRET

pytestmark = pytest.mark.anyio

# Module level: FastAPI resolves the (string) annotations against the module.
CurrentId, _OptionalId = user_dependencies()

HOSTILE = [
    "https://evil.example/",
    "http:evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/ /evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "",
    " /dashboard",
    "/dashboard\x00",
    "/dash\x7fboard",
    "/\u2028/evil.example",
    "/\u00a0/evil.example",
    "/" + "a" * 3000,
    None,
    42,
    ["/dashboard"],
]


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:30] for v in HOSTILE])
def test_a_hostile_next_is_replaced_by_the_default(value: Any) -> None:
    assert not is_local_path(value)
    assert safe_next(None, value, "/home") == "/home"


@pytest.mark.parametrize(
    "value",
    [
        "/",
        "/dashboard",
        "/orders?page=2&sort=-date",
        "/a/b#top",
        "/%2F%2Fevil.example",
        "/caf%C3%A9",
        "/café",
    ],
)
def test_a_local_path_is_kept(value: str) -> None:
    assert safe_next(None, value, "/home") == value


@settings(max_examples=2000, deadline=None, database=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
    | st.from_regex(r"[/\\]{1,3}[ -~\t\n]{0,20}", fullmatch=True)
)
def test_whatever_is_kept_stays_on_this_site_in_a_browser(value: str) -> None:
    """Resolved against our origin as a browser resolves a Location header (tabs and
    newlines dropped, backslashes read as slashes), a kept value never leaves it."""
    kept = safe_next(None, value, "/")
    if kept == "/":
        return
    browser = kept.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    resolved = urlsplit(urljoin("https://site.example/base/", browser))
    assert resolved.scheme == "https" and resolved.netloc == "site.example"


def _starlette() -> Starlette:
    async def orders(request: Request) -> PlainTextResponse:
        return PlainTextResponse("orders of " + require_user(request))

    app = Starlette(
        routes=[Route("/orders", orders), Route("/login", lambda r: PlainTextResponse("form"))],
        exception_handlers={LoginRequiredError: login_redirect("/login")},
    )
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    return app


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


PAGE = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
API = [
    {"accept": "application/json"},
    {"accept": "application/json, text/html;q=0.5"},
    {"x-requested-with": "XMLHttpRequest"},
    {"hx-request": "true", "accept": "text/html"},
    {"content-type": "application/json", "accept": "*/*"},
]


async def test_a_page_goes_to_login_with_next_and_comes_back() -> None:
    app = _starlette()
    async with _client(app) as c:
        r = await c.get("/orders?page=2&sort=-date", headers=PAGE)
        assert r.status_code == 303
        location = r.headers["location"]
        assert location == "/login?next=/orders%3Fpage%3D2%26sort%3D-date"
        assert r.headers["cache-control"] == "no-store"
        nxt = parse_qs(urlsplit(location).query)["next"][0]
        assert safe_next(None, nxt) == "/orders?page=2&sort=-date"
        await login_as(c, "ada", app=app)
        assert (await c.get(nxt, headers=PAGE)).text == "orders of ada"


@pytest.mark.parametrize("headers", API, ids=lambda h: next(iter(h)))
async def test_an_api_call_gets_the_401(headers: dict[str, str]) -> None:
    async with _client(_starlette()) as c:
        r = await c.get("/orders", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"detail": "Not authenticated"}
        assert "location" not in r.headers


async def test_the_login_page_itself_gets_no_next() -> None:
    async def probe(request: Request) -> PlainTextResponse:
        return PlainTextResponse(login_url(request, "/login"))

    app = Starlette(routes=[Route("/login", probe), Route("/x/{rest:path}", probe)])
    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with _client(app) as c:
        assert (await c.get("/login?next=/a")).text == "/login"
        # Percent-encoded and odd characters come back encoded, never as another host.
        assert (
            await c.get("/x/%2F%2Fevil.example")
        ).text == "/login?next=/x/%252F%252Fevil.example"
    with pytest.raises(ValueError, match="path on this site"):
        login_url(None, "https://evil.example/login")
    with pytest.raises(ValueError, match="path on this site"):
        login_redirect("//evil.example")


async def test_fastapi_current_user_redirects_pages_and_401s_api_calls() -> None:
    app = FastAPI()
    app.add_exception_handler(LoginRequiredError, login_redirect("/login"))

    @app.get("/orders")
    async def orders(user: CurrentId) -> str:
        return user

    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with _client(app) as c:
        page = await c.get("/orders", headers=PAGE)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/orders"
        api = await c.get("/orders", headers={"accept": "application/json"})
        assert api.status_code == 401 and api.headers["www-authenticate"] == "APIKey"


async def test_fastapi_without_the_handler_keeps_its_own_401() -> None:
    app = FastAPI()

    @app.get("/orders")
    async def orders(user: CurrentId) -> str:
        return user

    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    async with _client(app) as c:
        r = await c.get("/orders", headers=PAGE)
        assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
        assert r.headers["www-authenticate"] == "APIKey"


def test_flask_gets_the_same_login_url() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, TESTING=True)
    Sessionware(app, store=MemoryStore(development=True), csrf=False)

    @app.get("/orders")
    def orders() -> str:
        return login_url(current_view(), "/login")

    assert app.test_client().get("/orders?page=2").text == "/login?next=/orders%3Fpage%3D2"
