"""``UserLoader``: the app's user object for a request, loaded at most once however
many places ask; on Starlette, FastAPI and Flask, over the real stores."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import login
from sessionware.exceptions import LoginRequiredError
from sessionware.fastapi import user_dependencies
from sessionware.redirects import login_redirect
from sessionware.stores import Store
from sessionware.testing import login_as
from sessionware.users import UserLoader
from tests.helpers import SECRET

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class User:
    id: str
    name: str


USERS = {"1": User("1", "Ada"), "2": User("2", "Grace")}
CALLS: Counter[str] = Counter()


async def load_user(user_id: str) -> User | None:
    CALLS[user_id] += 1
    await asyncio.sleep(0)  # a real loader awaits its database
    return USERS.get(user_id)


def load_user_sync(user_id: str) -> User | None:
    CALLS[user_id] += 1
    return USERS.get(user_id)


users = UserLoader(load_user)
CurrentUser, OptionalUser = user_dependencies(loader=users)


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def _starlette(store: Store) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        first = await users.get(request)
        second = await users.get(request)
        third = await users.require(request)
        return JSONResponse({"name": third.name, "same": first is second is third})

    async def optional(request: Request) -> JSONResponse:
        user = await users.get(request)
        return JSONResponse({"name": user.name if user else None})

    async def switch(request: Request) -> JSONResponse:
        before = await users.get(request)
        await login(request, "2")  # a login in this request: the next ask loads anew
        after = await users.get(request)
        return JSONResponse({"before": before and before.name, "after": after and after.name})

    app = Starlette(
        routes=[Route("/me", me), Route("/optional", optional), Route("/switch", switch)],
        exception_handlers={LoginRequiredError: login_redirect("/login")},
    )
    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
    return app


async def test_starlette_loads_the_user_once_per_request(store: Store) -> None:
    app = _starlette(store)
    async with _client(app) as c:
        CALLS.clear()
        assert (await c.get("/optional")).json() == {"name": None}
        assert dict(CALLS) == {}  # nobody signed in: the loader is not called
        r = await c.get("/me", headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/me"
        await login_as(c, "1", app=app)
        CALLS.clear()
        assert (await c.get("/me")).json() == {"name": "Ada", "same": True}
        assert (await c.get("/me")).json()["name"] == "Ada"
        assert dict(CALLS) == {"1": 2}  # two requests, one load each
        CALLS.clear()
        assert (await c.get("/switch")).json() == {"before": "Ada", "after": "Grace"}
        assert dict(CALLS) == {"1": 1, "2": 1}


async def test_a_user_the_loader_no_longer_finds_is_nobody(store: Store) -> None:
    app = _starlette(store)
    async with _client(app) as c:
        await login_as(c, "deleted-account", app=app)
        assert (await c.get("/optional")).json() == {"name": None}
        r = await c.get("/me", headers={"accept": "application/json"})
        assert r.status_code == 401


async def test_fastapi_dependencies_hand_out_the_user_object_loaded_once(store: Store) -> None:
    app = FastAPI()

    async def greeting(user: CurrentUser) -> str:
        return "Hello " + user.name

    @app.get("/me")
    async def me(
        user: CurrentUser, maybe: OptionalUser, hello: str = Depends(greeting)
    ) -> dict[str, object]:
        return {"name": user.name, "same": user is maybe, "hello": hello}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, object]:
        return {"name": user.name if user else None}

    app.add_middleware(SessionMiddleware, store=store, secrets=[SECRET])
    async with _client(app) as c:
        assert (await c.get("/maybe")).json() == {"name": None}
        assert (await c.get("/me")).status_code == 401
        await login_as(c, "2", app=app)
        CALLS.clear()
        assert (await c.get("/me")).json() == {
            "name": "Grace",
            "same": True,
            "hello": "Hello Grace",
        }
        assert dict(CALLS) == {"2": 1}
