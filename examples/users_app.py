"""The user object, "login required" and flash messages, on FastAPI.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.users_app:app --host 127.0.0.1

A page that needs a login sends a browser to ``/login?next=...`` and an API client a
401; after login the browser comes back to ``next`` (checked by ``safe_next``) with a
flash message. (No password here, to keep the example short: see auth_app.py.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sessionware import SessionMiddleware
from sessionware.auth import login
from sessionware.exceptions import LoginRequiredError
from sessionware.fastapi import user_dependencies
from sessionware.flash import flash, get_flashed_messages
from sessionware.redirects import login_redirect, safe_next
from sessionware.stores import from_url
from sessionware.users import UserLoader


@dataclass
class User:
    id: str
    name: str


DB = {"1": User("1", "Ada Lovelace")}  # your database


async def load_user(user_id: str) -> User | None:
    """Called at most once per request; None for an account that is gone."""
    return DB.get(user_id)


users = UserLoader(load_user)
CurrentUser, OptionalUser = user_dependencies("sid", loader=users)

store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
app = FastAPI()
# Pages that need a login redirect to it; API calls (Accept: application/json) get a 401.
app.add_exception_handler(LoginRequiredError, login_redirect("/login"))
app.add_middleware(
    SessionMiddleware,
    store=store,
    secrets=[os.environ["SESSION_SECRET"]],
    cookie_name="sid",
    secure=False,  # plain http on this machine only
)


@app.get("/account", response_class=HTMLResponse)
async def account(request: Request, user: CurrentUser) -> str:
    notes = "".join(f"<p>{escape(m)}</p>" for m in get_flashed_messages(request))
    return f"{notes}<h1>Hello {escape(user.name)}</h1>"


@app.get("/api/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"id": user.id, "name": user.name}


@app.post("/login")
async def sign_in(
    request: Request, user_id: str = Form(), next: str = Form("/")
) -> RedirectResponse:
    await login(request, user_id)
    flash(request, "Welcome back!", "ok")
    return RedirectResponse(safe_next(request, next, "/account"), status_code=303)
