"""Login, logout, remember-me, throttling and CSRF in one small JSON app.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.auth_app:app --host 127.0.0.1

Users live in a dict here; a real app keeps the Argon2id hashes in its database.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionConfig, SessionMiddleware
from sessionware.auth import current_user_id, login, logout, require_user, sessions_of
from sessionware.csrf import CSRFMiddleware, csrf_token
from sessionware.passwords import PasswordHasher
from sessionware.remember import RememberConfig, RememberMeMiddleware
from sessionware.stores import from_url
from sessionware.throttle import LoginThrottle, TooManyAttemptsError

store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
hasher = PasswordHasher()
throttle = LoginThrottle()
USERS = {  # username -> hash
    "ada": hasher.hash("correct horse battery staple"),
    # Moved over from a Flask app: Werkzeug's hash verifies, and is replaced at sign-in.
    "lovelace": "pbkdf2:sha256:600000$sD4eadOPvdhpGGHw$"
    "de5ff13e6f5f8cfd7cd8268e916202bab892605aa5d7f0bd86d8eaf64dcbd079",
}


async def sign_in(request: Request) -> JSONResponse:
    """Check the password under the throttle, then log in (a new session id)."""
    form = await request.json()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    await throttle.check(request, username)  # 429 + Retry-After before any hashing
    # Unknown users cost the same Argon2 work as known ones (no enumeration by timing).
    ok = await run_in_threadpool(hasher.verify_or_dummy, USERS.get(username), password)
    if not ok:
        if wait := await throttle.failed(request, username):
            raise TooManyAttemptsError(wait)
        return JSONResponse({"error": "wrong username or password"}, status_code=401)
    await throttle.succeeded(request, username)
    if hasher.needs_rehash(USERS[username]):  # another framework's hash, or old parameters
        USERS[username] = await run_in_threadpool(hasher.hash, password)
    await login(request, username, remember=bool(form.get("remember_me")))
    return JSONResponse({"user": username, "csrf_token": csrf_token(request)})


async def me(request: Request) -> JSONResponse:
    """Who is signed in (401 for nobody), with their devices."""
    user = require_user(request)
    devices = await sessions_of(request, user)
    return JSONResponse({"user": user, "devices": [d.handle for d in devices]})


async def csrf(request: Request) -> JSONResponse:
    """The token a script sends back in the X-CSRF-Token header."""
    return JSONResponse({"csrf_token": csrf_token(request), "user": current_user_id(request)})


async def sign_out(request: Request) -> JSONResponse:
    """End the session and its remember-me series; both cookies are cleared."""
    await logout(request)
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/login", sign_in, methods=["POST"]),
        Route("/me", me),
        Route("/csrf", csrf),
        Route("/logout", sign_out, methods=["POST"]),
    ]
)
# Starlette runs the last added middleware first: sessions, then remember-me, then CSRF.
app.add_middleware(CSRFMiddleware)
app.add_middleware(RememberMeMiddleware, config=RememberConfig(cookie_name="remember"))
app.add_middleware(
    SessionMiddleware,
    store=store,
    config=SessionConfig.from_env(cookie_name="sid"),
)
