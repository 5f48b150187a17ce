"""FastAPI dependencies CurrentUser / OptionalUser: 401s, users, and the OpenAPI scheme."""

# No ``from __future__ import annotations``: FastAPI resolves route annotations at
# run time, and one test declares its dependency alias locally.

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from sessionware import SessionMiddleware
from sessionware.fastapi import CurrentUser, OptionalUser, user_dependencies
from sessionware.stores import MemoryStore
from sessionware.testing import login_as
from tests.test_auth_support import SECRET, client

pytestmark = pytest.mark.anyio


def make_api() -> FastAPI:
    """A FastAPI app with one protected and one open route."""
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    @app.get("/hello")
    async def hello(user: OptionalUser) -> dict[str, str | None]:
        return {"user": user}

    app.add_middleware(SessionMiddleware, store=MemoryStore(development=True), secrets=[SECRET])
    return app


async def test_current_user_is_401_until_logged_in() -> None:
    """CurrentUser answers 401 to anonymous requests and gives the id after login."""
    app = make_api()
    async with client(app) as c:
        r = await c.get("/me")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "APIKey"
        assert (await c.get("/hello")).json() == {"user": None}
        await login_as(c, "alice")
        assert (await c.get("/me")).json() == {"user": "alice"}
        assert (await c.get("/hello")).json() == {"user": "alice"}


async def test_forged_cookie_is_not_a_user() -> None:
    """The dependency trusts the server-side session, not whatever the cookie says."""
    app = make_api()
    async with client(app, cookies={"__Host-sid": "alice"}) as c:
        assert (await c.get("/me")).status_code == 401


def test_openapi_shows_the_cookie_scheme() -> None:
    """Routes using the dependencies declare the session cookie as an apiKey-in-cookie scheme."""
    spec = make_api().openapi()
    scheme = spec["components"]["securitySchemes"]["session"]
    assert scheme == {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-sid",
        "description": "Server-side session cookie set at login (HttpOnly).",
    }
    assert spec["paths"]["/me"]["get"]["security"] == [{"session": []}]
    assert spec["paths"]["/hello"]["get"]["security"] == [{"session": []}]


def test_other_cookie_name() -> None:
    """user_dependencies(name) documents a session cookie with another name."""
    current, _optional = user_dependencies("sid")
    app = FastAPI()

    @app.get("/me")
    async def me(user: current) -> dict[str, str]:  # type: ignore[valid-type]
        return {"user": user}

    assert app.openapi()["components"]["securitySchemes"]["session"]["name"] == "sid"


async def test_sessionware_errors_answer_as_fastapi_errors() -> None:
    """A route that calls the auth guards or raises the throttle's error answers FastAPI's
    way, ``{"detail": ...}`` with the status and headers; http_exception maps one."""
    from fastapi import HTTPException, Request

    from sessionware.auth import requires_recent_login
    from sessionware.fastapi import http_exception
    from sessionware.throttle import TooManyAttemptsError

    app = make_api()

    @app.get("/sensitive")
    async def sensitive(request: Request) -> dict[str, bool]:
        requires_recent_login(request, 300)
        return {"ok": True}

    @app.get("/busy")
    async def busy() -> dict[str, bool]:
        raise TooManyAttemptsError(9)

    async with client(app) as c:
        r = await c.get("/sensitive")
        assert (r.status_code, r.json()) == (401, {"detail": "Not authenticated"})
        r = await c.get("/busy")
        assert (r.status_code, r.json()) == (429, {"detail": "Too many attempts. Try again later."})
        assert r.headers["retry-after"] == "9"
    mapped = http_exception(TooManyAttemptsError(3), {"X-Extra": "1"})
    assert isinstance(mapped, HTTPException)
    assert (mapped.status_code, mapped.headers) == (429, {"Retry-After": "3", "X-Extra": "1"})


def test_import_sessionware_needs_no_fastapi_or_argon2() -> None:
    """The auth, remember and throttle modules load without FastAPI or argon2."""
    code = (
        "import sys, sessionware, sessionware.auth, sessionware.remember, sessionware.throttle;"
        "bad = [m for m in ('fastapi', 'argon2', 'redis', 'psycopg') if m in sys.modules];"
        "sys.exit(str(bad) if bad else 0)"
    )
    src = Path(__file__).resolve().parents[1] / "src"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=src, check=False
    )
    assert result.returncode == 0, result.stderr
