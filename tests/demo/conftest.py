"""Fixtures for the demo's HTTP contract tests: the real app on a real SQLite file,
driven in-process by a small cookie-keeping client.

Every test that builds the demo runs twice, once per ``framework``: the Starlette app
through ``httpx.ASGITransport``, and the Flask app (:mod:`sessionware.demo.flask_app`)
through ``httpx.WSGITransport`` on a worker thread, as a threaded WSGI server runs it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from flask import Flask

from sessionware.demo import DemoSettings, create_app
from sessionware.demo.flask_app import create_app as create_flask_app
from sessionware.stores.base import Store

SECRET = "demo-test-secret-" + "s" * 40
ORIGIN = "http://demo.test"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


#: The demo's two apps, one contract.
FRAMEWORKS = ("starlette", "flask")


class WSGIOnThread(httpx.AsyncBaseTransport):
    """A WSGI app for an async client: each request on a worker thread, like a
    threaded WSGI server, so the app's blocking calls never run on the event loop."""

    def __init__(self, app: Any) -> None:
        self.sync = httpx.WSGITransport(app=app, remote_addr="127.0.0.1")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        plain = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = self.sync.handle_request(plain)
            return response.status_code, response.headers.raw, response.read()

        status, headers, content = await anyio.to_thread.run_sync(call)
        return httpx.Response(status, headers=headers, content=content, request=request)


def transport(app: Any) -> httpx.AsyncBaseTransport:
    """How a client reaches ``app``: ASGI in-process, or WSGI on a thread."""
    if isinstance(app, Flask):
        return WSGIOnThread(app)
    return httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))


class Client:
    """One browser: keeps its own cookies (so tests see every Set-Cookie) and sends
    the headers a browser sends on a same-origin form post."""

    def __init__(self, app: Any) -> None:
        self.http = httpx.AsyncClient(
            transport=transport(app),
            base_url=ORIGIN,
            headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 demo-test"},
        )
        self.jar: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def _keep(self, response: httpx.Response) -> None:
        self.http.cookies.clear()
        for header in response.headers.get_list("set-cookie"):
            pair = header.split(";")[0]
            name, _, value = pair.partition("=")
            if not value or "max-age=0" in header.lower():
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.jar and "cookie" not in {k.lower() for k in headers}:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        return headers

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET like a browser tab would."""
        response = await self.http.get(path, headers=self._headers(headers))
        self._keep(response)
        return response

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        origin: str | None = ORIGIN,
    ) -> httpx.Response:
        """POST a form, with the Origin and Sec-Fetch-Site a same-origin form sends."""
        extra = {"sec-fetch-site": "same-origin"} if origin == ORIGIN else {}
        if origin is not None:
            extra["origin"] = origin
        extra.update(headers or {})
        response = await self.http.post(path, data=data or {}, headers=self._headers(extra))
        self._keep(response)
        return response

    async def token(self, path: str = "/dashboard") -> str:
        """The ``_csrf`` token of the page at ``path``."""
        page = await self.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no _csrf field on {path}"
        return found.group(1)

    async def submit(self, page: str, action: str, data: dict[str, str]) -> httpx.Response:
        """Load ``page``, then post its form to ``action`` with the token it carried."""
        return await self.post(action, {**data, "_csrf": await self.token(page)})

    async def register(self, username: str, password: str = PASSWORD) -> httpx.Response:
        """Create an account through the form (which signs in)."""
        return await self.submit(
            "/register", "/register", {"username": username, "password": password}
        )

    async def login(
        self, username: str, password: str = PASSWORD, *, remember: bool = False, nxt: str = ""
    ) -> httpx.Response:
        """Sign in through the form."""
        data = {"username": username, "password": password, "next": nxt}
        if remember:
            data["remember_me"] = "1"
        return await self.submit("/login", "/login", data)


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """Which of the demo's two apps the test drives."""
    name: str = request.param
    return name


@pytest.fixture
def make_app(tmp_path: Path, framework: str) -> Callable[..., Any]:
    """Build the demo on a fresh SQLite file; ``env`` sets timeouts and limits."""

    def build(env: dict[str, str] | None = None, store: Store | None = None, **kw: Any) -> Any:
        environ = {"SESSION_SECRET": SECRET, **(env or {})}
        db = tmp_path / "demo.sqlite3"
        settings = DemoSettings.load(environ, store=f"sqlite:///{db}", **kw)
        if framework == "flask":
            return create_flask_app(settings, store=store)
        return create_app(settings, store=store)

    return build


@pytest.fixture
async def app(make_app: Callable[..., Any]) -> AsyncIterator[Any]:
    """The demo with default settings; its store is closed afterwards."""
    application = make_app()
    yield application
    await application.state.demo.store.close()


@pytest.fixture
async def new_client(app: Any) -> AsyncIterator[Callable[[], Client]]:
    """Open more browsers on the same app; all are closed at the end."""
    opened: list[Client] = []

    def open_one() -> Client:
        client = Client(app)
        opened.append(client)
        return client

    yield open_one
    for c in opened:
        await c.aclose()


@pytest.fixture
def client(new_client: Callable[[], Client]) -> Client:
    """One browser."""
    return new_client()
