"""A small Starlette app over SessionMiddleware, shared by the Redis tests.

Routes: ``/login`` stores a user id, ``/set/{k}`` stores one key, ``/get`` returns the
session, ``/slow/{k}`` stores a key then waits on ``gate`` before answering,
``/logout`` destroys the session. ``seen`` records each request's store key and raw
id so tests can look for them in Redis.
"""

from __future__ import annotations

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.stores.base import Store

__all__ = ["SECRET", "SessionApp"]

SECRET = "redis-test-secret-" + "r" * 40


class SessionApp:
    """The app, plus the hooks tests steer it with."""

    def __init__(self, store: Store, **options: object) -> None:
        self.gate = anyio.Event()
        self.entered = anyio.Event()
        self.seen: dict[str, str] = {}
        routes = [
            Route("/login", self.login, methods=["POST"]),
            Route("/set/{k}", self.set, methods=["POST"]),
            Route("/get", self.get),
            Route("/slow/{k}", self.slow, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]
        options.setdefault("cookie_name", "sid")
        self.app = SessionMiddleware(
            Starlette(routes=routes), store=store, secrets=[SECRET], **options
        )

    def _note(self, request: Request) -> None:
        self.seen["key"] = request.session.key
        self.seen["id"] = request.session.id

    async def login(self, request: Request) -> PlainTextResponse:
        await request.session.regenerate()
        request.session["user_id"] = "42"
        self._note(request)
        return PlainTextResponse("in")

    async def set(self, request: Request) -> PlainTextResponse:
        request.session[request.path_params["k"]] = request.query_params.get("v", "1")
        self._note(request)
        return PlainTextResponse("set")

    async def get(self, request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    async def slow(self, request: Request) -> PlainTextResponse:
        request.session[request.path_params["k"]] = "late"
        self._note(request)
        self.entered.set()
        await self.gate.wait()
        return PlainTextResponse("slow")

    async def logout(self, request: Request) -> PlainTextResponse:
        await request.session.destroy()
        return PlainTextResponse("out")
