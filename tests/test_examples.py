"""The example apps the README quotes work as a new user would run them."""

from __future__ import annotations

import runpy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request  # module level: FastAPI resolves the annotation here

from sessionware import Session
from tests.helpers import SECRET

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.anyio


def _example(name: str) -> Any:
    """A fixture that loads examples/<name> on a SQLite file in tmp_path, closing its store."""

    @pytest.fixture
    async def loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[dict[str, Any]]:
        monkeypatch.setenv("SESSION_SECRET", SECRET)
        monkeypatch.setenv("SESSION_STORE", f"sqlite:///{tmp_path}/sessions.sqlite3")
        mod = runpy.run_path(str(EXAMPLES / name))
        yield mod
        await mod["store"].close()

    return loaded


starlette_example = _example("starlette_app.py")
fastapi_example = _example("fastapi_app.py")
auth_example = _example("auth_app.py")
users_example = _example("users_app.py")


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_starlette_example_counts_logs_in_and_out(
    starlette_example: dict[str, Any], tmp_path: Path
) -> None:
    """The Starlette example keeps a count, rotates the id at login and forgets at logout."""
    async with _client(starlette_example["app"]) as c:
        assert (await c.get("/")).text == "Hello stranger, visit number 1.\n"
        first = c.cookies["sid"]
        assert (await c.get("/")).text == "Hello stranger, visit number 2.\n"
        r = await c.post("/login", data={"name": "ada"})
        assert r.status_code == 303
        assert c.cookies["sid"] != first
        assert (await c.get("/")).text == "Hello ada, visit number 3.\n"
        r = await c.post("/logout")
        assert "Max-Age=0" in r.headers["set-cookie"]
        assert "sid" not in c.cookies
        assert (await c.get("/")).text == "Hello stranger, visit number 1.\n"
    assert (tmp_path / "sessions.sqlite3").exists()


async def test_fastapi_example_gives_handlers_the_session(
    fastapi_example: dict[str, Any],
) -> None:
    """The FastAPI example's Depends(get_session) hands each handler the request's session."""
    async with _client(fastapi_example["app"]) as c:
        assert (await c.get("/me")).status_code == 401
        assert (await c.get("/")).json() == {"name": None, "visits": 1}
        anonymous = c.cookies["sid"]
        assert (await c.post("/login", json={"name": "ada"})).json() == {"name": "ada"}
        assert c.cookies["sid"] != anonymous
        assert (await c.get("/me")).json() == {"name": "ada"}
        assert (await c.get("/")).json() == {"name": "ada", "visits": 2}
        await c.post("/logout")
        assert (await c.get("/me")).status_code == 401


async def test_fastapi_dependency_returns_a_sessionware_session(
    fastapi_example: dict[str, Any],
) -> None:
    """get_session returns the sessionware Session itself, not a copy."""
    captured: list[object] = []
    app = fastapi_example["app"]

    @app.get("/probe")
    async def probe(request: Request) -> dict[str, bool]:
        s = fastapi_example["get_session"](request)
        captured.append(s)
        return {"same": s is request.session}

    async with _client(app) as c:
        assert (await c.get("/probe")).json() == {"same": True}
    assert isinstance(captured[0], Session)


async def test_auth_example_logs_in_as_a_browser_and_out_with_the_token(
    auth_example: dict[str, Any],
) -> None:
    """A browser-like client logs in, sees itself, needs the CSRF token to log out, then can."""
    browser = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    async with _client(auth_example["app"]) as c:
        bad = await c.post("/login", json={"username": "ada", "password": "nope"}, headers=browser)
        assert bad.status_code == 401
        assert "set-cookie" not in bad.headers  # a failed login leaves no trace
        r = await c.post(
            "/login",
            json={"username": "ada", "password": "correct horse battery staple"},
            headers=browser,
        )
        assert r.status_code == 200, r.text
        token = r.json()["csrf_token"]
        me = await c.get("/me")
        assert me.json()["user"] == "ada" and len(me.json()["devices"]) == 1
        assert (await c.post("/logout", headers=browser)).status_code == 403
        out = await c.post("/logout", headers={**browser, "X-CSRF-Token": token})
        assert out.status_code == 200
        assert (await c.get("/me")).status_code == 401


async def test_auth_example_moves_a_werkzeug_hash_to_argon2id_at_sign_in(
    auth_example: dict[str, Any],
) -> None:
    """A user brought over from Flask signs in with the old password; the stored hash is
    then Argon2id, and the password still works against it."""
    browser = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    users = auth_example["USERS"]
    assert users["lovelace"].startswith("pbkdf2:sha256:")
    async with _client(auth_example["app"]) as c:
        wrong = {"username": "lovelace", "password": "difference engine"}
        assert (await c.post("/login", json=wrong, headers=browser)).status_code == 401
        assert users["lovelace"].startswith("pbkdf2:sha256:")
        right = {"username": "lovelace", "password": "tabulating engine 1843"}
        r = await c.post("/login", json=right, headers=browser)
        assert r.status_code == 200, r.text
    assert users["lovelace"].startswith("$argon2id$")
    assert auth_example["hasher"].verify(users["lovelace"], "tabulating engine 1843")


async def test_auth_example_script_login_needs_the_anonymous_token(
    auth_example: dict[str, Any],
) -> None:
    """A script (no Origin, no Fetch-Metadata) must fetch a token before it may log in."""
    creds = {"username": "ada", "password": "correct horse battery staple", "remember_me": True}
    async with _client(auth_example["app"]) as c:
        assert (await c.post("/login", json=creds)).status_code == 403
        anon = await c.get("/csrf")
        assert "set-cookie" not in anon.headers  # handing out a token creates no session
        r = await c.post("/login", json=creds, headers={"X-CSRF-Token": anon.json()["csrf_token"]})
        assert r.status_code == 200, r.text
        assert {"sid", "remember"} <= set(c.cookies.keys())


async def test_auth_example_throttles_with_retry_after(auth_example: dict[str, Any]) -> None:
    """Repeated wrong passwords end in 429 with a Retry-After header."""
    browser = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    async with _client(auth_example["app"]) as c:
        statuses = []
        for _ in range(8):
            r = await c.post("/login", json={"username": "bob", "password": "x"}, headers=browser)
            statuses.append(r.status_code)
        assert statuses[0] == 401 and 429 in statuses
        assert int(r.headers["retry-after"]) > 0


async def test_users_example_redirects_pages_401s_the_api_and_flashes_once(
    users_example: dict[str, Any],
) -> None:
    """A page needing a login goes to /login?next=...; the API answers 401; after login
    the browser is back on the page, greeted once by name."""
    async with _client(users_example["app"]) as c:
        page = await c.get("/account", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/account"
        api = await c.get("/api/me", headers={"accept": "application/json"})
        assert api.status_code == 401
        evil = await c.post("/login", data={"user_id": "1", "next": "//evil.example"})
        assert evil.headers["location"] == "/account"
        r = await c.post("/login", data={"user_id": "1", "next": "/account"})
        assert r.status_code == 303 and r.headers["location"] == "/account"
        first = await c.get("/account")
        assert "Welcome back!" in first.text and "Hello Ada Lovelace" in first.text
        assert "Welcome back!" not in (await c.get("/account")).text
        assert (await c.get("/api/me")).json() == {"id": "1", "name": "Ada Lovelace"}
