"""Security events and a cap on sessions per user, on Starlette.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.events_app:app --host 127.0.0.1

``POST /login`` (form fields ``name``, ``password``) signs in under the login throttle;
a fourth device of one user is refused with a 409; ``GET /audit`` shows what the event
handler recorded. (No CSRF middleware and a dict for a database: see auth_app.py.)
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.auth import login, logout
from sessionware.events import Event, Events
from sessionware.stores import from_url
from sessionware.throttle import LoginThrottle

PASSWORDS = {"ada": "correct horse"}  # your user database (hash them: auth_app.py)
audit: list[dict[str, str | None]] = []  # your audit log, a SIEM, a queue...

events = Events()


@events.on("login")
@events.on("login_failed")
@events.on("throttled")
@events.on("logout")
def record(event: Event) -> None:
    audit.append(
        {"event": event.name, "user": event.user_id, "from": event.client, "why": event.reason}
    )


throttle = LoginThrottle()


async def do_login(request: Request) -> JSONResponse:
    form = await request.form()
    name, password = str(form["name"]), str(form["password"])
    async with throttle.attempt(request, name) as attempt:  # "throttled" past the budget
        if PASSWORDS.get(name) != password:
            await attempt.failed()  # "login_failed"
            return JSONResponse({"error": "wrong name or password"}, status_code=401)
        await attempt.succeeded()
    await login(request, name)  # past the cap: SessionLimitError, answered 409
    return JSONResponse({"user": name})


async def do_logout(request: Request) -> JSONResponse:
    await logout(request)
    return JSONResponse({"user": None})


async def show_audit(request: Request) -> JSONResponse:
    return JSONResponse(audit)


store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
app = Starlette(
    routes=[
        Route("/login", do_login, methods=["POST"]),
        Route("/logout", do_logout, methods=["POST"]),
        Route("/audit", show_audit),
    ]
)
app.add_middleware(
    SessionMiddleware,
    store=store,
    secrets=[os.environ["SESSION_SECRET"]],
    cookie_name="sid",
    secure=False,  # plain http on this machine only
    events=events,
    max_sessions_per_user=3,
    max_sessions_policy="refuse",  # or "oldest": the least recently seen device is signed out
)
