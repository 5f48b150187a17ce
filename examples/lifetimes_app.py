"""Per-login lifetimes and periodic id rotation in one small JSON app.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.lifetimes_app:app --host 127.0.0.1

An admin login lasts 5 minutes idle and 1 hour in all; "keep me signed in" lasts a
week idle and 30 days in all, with a cookie that outlives the browser; every session
in use gets a new id every 15 minutes. (Passwords are left out: see auth_app.py.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import current_user_id, login, logout
from sessionware.stores import Store, from_url


async def sign_in(request: Request) -> JSONResponse:
    """Log in with the lifetime this kind of login deserves."""
    form = await request.json()
    user = str(form["username"])  # after the password checked out
    if user == "admin":
        await login(
            request,
            user,
            idle_timeout=timedelta(minutes=5),
            absolute_timeout=timedelta(hours=1),
        )
    elif form.get("keep_me_signed_in"):
        await login(
            request,
            user,
            idle_timeout=timedelta(days=7),
            absolute_timeout=timedelta(days=30),
            cookie_max_age=timedelta(days=30),
        )
    else:
        await login(request, user)  # the global idle_timeout / absolute_timeout
    return JSONResponse({"user": user})


async def me(request: Request) -> JSONResponse:
    """Who is signed in, and a counter that proves writes survive id rotation."""
    user = current_user_id(request)
    if user is None:
        return JSONResponse({"user": None}, status_code=401)
    if request.method == "POST":
        request.session["clicks"] = request.session.get("clicks", 0) + 1
    return JSONResponse({"user": user, "clicks": request.session.get("clicks", 0)})


async def sign_out(request: Request) -> JSONResponse:
    """End the session."""
    await logout(request)
    return JSONResponse({"ok": True})


def build(store: Store, secret: str, clock: Callable[[], float] | None = None) -> Starlette:
    """The app on ``store`` (tests pass their own store and clock)."""
    app = Starlette(
        routes=[
            Route("/login", sign_in, methods=["POST"]),
            Route("/me", me, methods=["GET", "POST"]),
            Route("/logout", sign_out, methods=["POST"]),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[secret],
        idle_timeout=timedelta(minutes=30),
        absolute_timeout=timedelta(hours=12),
        max_lifetime=timedelta(days=30),  # the longest a login may ask for
        rotate_every=timedelta(minutes=15),  # a new id every 15 minutes of use
        rotate_grace=30,  # the old id works 30 more seconds, for requests in flight
        clock=clock,
    )
    return app


store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
app = build(store, os.environ.get("SESSION_SECRET", ""))  # none set: a start-up error with the fix
