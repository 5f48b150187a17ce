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


async def _loaded(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_STORE", f"sqlite:///{tmp_path}/sessions.sqlite3")
    return runpy.run_path(str(EXAMPLES / name))


@pytest.fixture
async def starlette_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    """examples/starlette_app.py, loaded on a SQLite file in tmp_path."""
    mod = await _loaded("starlette_app.py", tmp_path, monkeypatch)
    yield mod
    await mod["store"].close()


@pytest.fixture
async def fastapi_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    """examples/fastapi_app.py, loaded on a SQLite file in tmp_path."""
    mod = await _loaded("fastapi_app.py", tmp_path, monkeypatch)
    yield mod
    await mod["store"].close()


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
