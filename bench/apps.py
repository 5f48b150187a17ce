"""The apps the core bench serves: one Starlette app, with or without a session layer.

``BENCH_KIND`` picks the layer: ``bare``, ``passthrough`` (an ASGI middleware that does
nothing), ``memory``, ``sqlite`` (sessionware) or ``starlette`` (Starlette's own
signed-cookie SessionMiddleware).
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


class Passthrough:
    """A pure ASGI middleware that only wraps ``send``: the floor any session layer pays."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


def make_app() -> Any:
    """Build the app ``BENCH_KIND`` names."""
    kind = os.environ.get("BENCH_KIND", "bare")
    app = Starlette(routes=[Route("/read", read), Route("/write", write)])
    if kind == "bare":
        return app
    if kind == "passthrough":
        app.add_middleware(Passthrough)
        return app
    if kind == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        app.add_middleware(StarletteSessions, secret_key=SECRET)
        return app
    from sessionware import SessionMiddleware
    from sessionware.stores import MemoryStore, SQLiteStore

    if kind == "memory":
        store: Any = MemoryStore(development=True)
    elif kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="sessionware-bench-")
        store = SQLiteStore(os.path.join(folder, "bench.sqlite3"))
    else:
        raise SystemExit(f"unknown BENCH_KIND {kind!r}")
    app.add_middleware(
        SessionMiddleware, store=store, secrets=[SECRET], cookie_name="sid", secure=False
    )
    return app
