"""The demo's outer layers: HSTS on https only, the allowed hosts it serves, relative
redirects, and the form-size limit as a page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sessionware.demo import DemoSettings, create_app
from sessionware.demo.flask_app import create_app as create_flask_app
from sessionware.exceptions import ConfigurationError
from tests.demo.conftest import SECRET, transport

pytestmark = pytest.mark.anyio

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
async def build(tmp_path: Path, framework: str) -> AsyncIterator[Callable[..., Starlette]]:
    """Build the demo (on either framework) on a fresh SQLite file, with ``tls``, ``env``
    and the bound ``host``."""
    made: list[Any] = []
    factory = create_flask_app if framework == "flask" else create_app

    def make(
        *, tls: bool = False, env: dict[str, str] | None = None, host: str | None = None
    ) -> Starlette:
        environ = {"SESSION_SECRET": SECRET, **(env or {})}
        db = tmp_path / f"demo{len(made)}.sqlite3"
        settings = DemoSettings.load(environ, store=f"sqlite:///{db}", tls=tls)
        app: Any = factory(settings, host=host)
        made.append(app)
        return app

    yield make
    for app in made:
        await app.state.demo.store.close()


def browser(app: Any, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport(app), base_url=base)


async def test_hsts_on_every_https_response(build: Callable[..., Starlette]) -> None:
    """demo --tls sends HSTS for a year with subdomains on pages, errors and refusals."""
    app = build(tls=True)
    async with browser(app, "https://127.0.0.1:8443") as c:
        page = await c.get("/login")
        missing = await c.get("/nope", headers={"accept": "text/html"})
        refused = await c.post(
            "/login",
            data={"username": "a", "password": "b"},
            headers={"origin": "https://evil.example", "accept": "text/html"},
        )
    assert (page.status_code, missing.status_code, refused.status_code) == (200, 404, 403)
    for response in (page, missing, refused):
        assert response.headers.get_list("strict-transport-security") == [HSTS]


async def test_no_hsts_over_plain_http(build: Callable[..., Starlette]) -> None:
    """Over http (RFC 6797 §7.2) no HSTS header is sent, even by a --tls build."""
    for tls in (False, True):
        async with browser(build(tls=tls), "http://127.0.0.1:8000") as c:
            response = await c.get("/login")
        assert response.status_code == 200
        assert "strict-transport-security" not in response.headers


async def test_served_demo_refuses_foreign_host(build: Callable[..., Starlette]) -> None:
    """Bound to 127.0.0.1 with no ALLOWED_HOSTS, the demo serves 127.0.0.1 and localhost and
    answers any other Host 400, a same-origin-looking login post from it included."""
    app = build(host="127.0.0.1")
    async with browser(app, "http://127.0.0.1:8000") as c:
        assert (await c.get("/login")).status_code == 200
    async with browser(app, "http://localhost:8000") as c:
        assert (await c.get("/healthz")).status_code == 200
    async with browser(app, "http://evil.example:8000") as c:
        page = await c.get("/login")
        login = await c.post(
            "/login",
            data={"username": "a", "password": "b"},
            headers={"origin": "http://evil.example:8000", "sec-fetch-site": "same-origin"},
        )
    assert (page.status_code, login.status_code) == (400, 400)
    assert "set-cookie" not in login.headers


async def test_allowed_hosts_from_the_environment(build: Callable[..., Starlette]) -> None:
    """ALLOWED_HOSTS replaces the defaults: its names are served, loopback no longer is."""
    app = build(env={"ALLOWED_HOSTS": "demo.example, .demo.example"}, host="127.0.0.1")
    async with browser(app, "http://www.demo.example") as c:
        assert (await c.get("/login")).status_code == 200
    async with browser(app, "http://127.0.0.1") as c:
        assert (await c.get("/login")).status_code == 400
    with pytest.raises(ConfigurationError, match="not a host name"):
        build(env={"ALLOWED_HOSTS": "https://demo.example"})


async def test_redirects_are_relative_whatever_the_host(build: Callable[..., Starlette]) -> None:
    """No redirect carries the request's Host: a trailing slash is a 404, not an absolute
    redirect, and the sign-in redirect is a path."""
    app = build()  # in-process, no host check: only the redirects protect
    async with browser(app, "http://evil.example") as c:
        slash = await c.get("/login/")
        guarded = await c.get("/dashboard")
    assert slash.status_code == 404 and "location" not in slash.headers
    assert guarded.status_code == 303
    assert guarded.headers["location"].startswith("/login")


async def test_oversize_login_gets_413_page(build: Callable[..., Starlette]) -> None:
    """A 48 MiB anonymous login post gets 413 (as a page for a browser), never parsed."""
    app = build(host="127.0.0.1")
    body = b"username=a&password=" + b"x" * (48 * 1024 * 1024)
    async with browser(app, "http://127.0.0.1:8000") as c:
        r = await c.post(
            "/login",
            content=body,
            headers={
                "origin": "http://127.0.0.1:8000",
                "sec-fetch-site": "same-origin",
                "content-type": "application/x-www-form-urlencoded",
                "accept": "text/html",
            },
        )
    assert r.status_code == 413
    assert "This form is too large" in r.text
