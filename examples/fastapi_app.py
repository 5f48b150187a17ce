"""sessionware with FastAPI: a dependency hands each handler the session.

Run it on this machine::

    SESSION_SECRET=$(sessionware secret) uvicorn examples.fastapi_app:app --host 127.0.0.1

The cookie is named ``sid`` so it works over plain http here; behind https in
production drop ``cookie_name`` to get ``__Host-sid``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from sessionware import Session, SessionConfig, SessionMiddleware
from sessionware.stores import from_url

store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))


def get_session(request: Request) -> Session:
    """The sessionware session of this request (SessionMiddleware put it there)."""
    session: Session = request.session
    return session


SessionDep = Annotated[Session, Depends(get_session)]


class Login(BaseModel):
    """What the login endpoint takes (a real app checks a password here)."""

    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the store's connections when the server stops."""
    yield
    await store.close()


app = FastAPI(lifespan=lifespan)
app.add_middleware(
    SessionMiddleware, store=store, config=SessionConfig.from_env(cookie_name="sid")
)


@app.get("/")
async def home(session: SessionDep) -> dict[str, object]:
    """Who is here, and how often they came."""
    session["visits"] = session.get("visits", 0) + 1
    return {"name": session.get("name"), "visits": session["visits"]}


@app.post("/login")
async def login(body: Login, session: SessionDep) -> dict[str, str]:
    """Log in: a new session id first (no fixation), then the user."""
    await session.regenerate()
    session["name"] = body.name
    return {"name": body.name}


@app.get("/me")
async def me(session: SessionDep) -> dict[str, str]:
    """Only for someone logged in."""
    name = session.get("name")
    if name is None:
        raise HTTPException(status_code=401, detail="log in first")
    return {"name": name}


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, bool]:
    """Log out: delete the session on the server and expire the cookie."""
    await session.destroy()
    return {"ok": True}
