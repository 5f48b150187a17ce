"""The apps the core bench serves: one Starlette app, with or without a session layer.

``BENCH_KIND`` picks the layer: ``bare``; ``passthrough`` (an ASGI middleware that only
wraps ``send``); ``vary`` (one that only adds ``Vary: Cookie`` to the response start:
the floor every correct session layer pays); ``memory``, ``sqlite``, ``redis``
(sessionware on MemoryStore, SQLiteStore in the file ``BENCH_SQLITE``, RedisStore at
``BENCH_REDIS``); ``starlette`` (Starlette's own signed-cookie SessionMiddleware).
Every worker process of one server shares the SQLite file and the Redis server.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET = "bench-secret-" + "x" * 40  # a bench-only value, never a real secret
KINDS = ("bare", "passthrough", "vary", "memory", "sqlite", "redis", "starlette")


async def read(request: Request) -> PlainTextResponse:
    """Read one value of an existing session."""
    if "session" not in request.scope:
        return PlainTextResponse("n=0")
    return PlainTextResponse(f"n={request.session.get('n', 0)}")


async def write(request: Request) -> PlainTextResponse:
    """Change the session on every request."""
    if "session" not in request.scope:
        return PlainTextResponse("n=1")
    n = request.session.get("n", 0) + 1
    request.session["n"] = n
    return PlainTextResponse(f"n={n}")


async def login(request: Request) -> PlainTextResponse:
    """Store a user id: sent without a cookie, every request creates a session."""
    if "session" in request.scope:
        request.session["user_id"] = "42"
    return PlainTextResponse("in")


class Passthrough:
    """A pure ASGI middleware that only wraps ``send``: what any middleware pays."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


_VARY = (b"vary", b"Cookie")


class VaryCookie:
    """A pure ASGI middleware whose only work is ``Vary: Cookie`` on the response start.

    Any correct session layer must send it (a shared cache would otherwise serve one
    user's page to another), so its cost is the floor a session layer is judged against.
    It is correct, not a shortcut: an existing Vary line is left to the app here (none
    of these routes sends one) and the app's header list is copied, not changed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if not any(name.lower() == b"vary" for name, _ in headers):
                    message["headers"] = [*headers, _VARY]
            await send(message)

        await self.app(scope, receive, wrapped)


def _store(kind: str) -> Any:
    from sessionware.stores import MemoryStore, RedisStore, SQLiteStore

    if kind == "memory":
        return MemoryStore(development=True)
    if kind == "sqlite":
        path = os.environ.get("BENCH_SQLITE") or os.path.join(
            tempfile.mkdtemp(prefix="sessionware-bench-"), "bench.sqlite3"
        )
        return SQLiteStore(path)
    if kind == "redis":
        return RedisStore.from_url(os.environ["BENCH_REDIS"], prefix="bench:")
    raise SystemExit(f"unknown BENCH_KIND {kind!r}; one of {', '.join(KINDS)}")


def make_app() -> Any:
    """Build the app ``BENCH_KIND`` names."""
    kind = os.environ.get("BENCH_KIND", "bare")
    routes = [Route("/read", read), Route("/write", write), Route("/login", login)]
    app = Starlette(routes=routes)
    if kind == "bare":
        return app
    if kind == "passthrough":
        app.add_middleware(Passthrough)
        return app
    if kind == "vary":
        app.add_middleware(VaryCookie)
        return app
    if kind == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        app.add_middleware(StarletteSessions, secret_key=SECRET)
        return app
    from sessionware import SessionMiddleware

    app.add_middleware(
        SessionMiddleware, store=_store(kind), secrets=[SECRET], cookie_name="sid", secure=False
    )
    return app
