"""The smallest sessionware app: Starlette, sessions in a SQLite file.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.starlette_app:app --host 127.0.0.1

then open http://127.0.0.1:8000. The cookie is named ``sid`` so it works over plain
http here; behind https in production drop ``cookie_name`` to get ``__Host-sid``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionware import SessionConfig, SessionMiddleware
from sessionware.stores import from_url

# SESSION_STORE picks the store (sqlite:///sessions.sqlite3 by default, or memory://,
# redis://...); SESSION_SECRET (comma-separated, first signs) is read by from_env.
store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
config = SessionConfig.from_env(cookie_name="sid")


async def home(request: Request) -> Response:
    """Count this browser's visits; the first visit is what creates its session."""
    session = request.session
    session["visits"] = session.get("visits", 0) + 1
    name = session.get("name", "stranger")
    return PlainTextResponse(f"Hello {name}, visit number {session['visits']}.\n")


async def login(request: Request) -> Response:
    """Remember a name; a new session id on every privilege change stops fixation."""
    form = await request.form()
    await request.session.regenerate()
    request.session["name"] = str(form.get("name", ""))[:100]
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    """Delete the session on the server and expire the cookie."""
    await request.session.destroy()
    return RedirectResponse("/", status_code=303)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Close the store's connections when the server stops."""
    yield
    await store.close()


app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ],
    middleware=[Middleware(SessionMiddleware, store=store, config=config)],
    lifespan=lifespan,
)
