"""A WebSocket that reads and writes the session, and is closed when the session ends.

Run it:

    SESSION_SECRET=$(sessionware secret) uvicorn examples.websocket_app:app --host 127.0.0.1

then ``POST /login`` and open ``ws://127.0.0.1:8000/chat`` with the cookie it set.
Sign out everywhere (``POST /logout-everywhere``) from another tab and the socket is
closed with code 1008 within ``websocket_check_interval`` seconds.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionware import SessionMiddleware
from sessionware.auth import current_user_id, login, logout_everywhere
from sessionware.stores import Store, from_url


async def sign_in(request: Request) -> PlainTextResponse:
    await login(request, "ada")  # a real app checks a password (and CSRF) first
    return PlainTextResponse("signed in")


async def sign_out_everywhere(request: Request) -> PlainTextResponse:
    ended = await logout_everywhere(request, "ada")
    return PlainTextResponse(f"{ended} sessions ended")


async def chat(websocket: WebSocket) -> None:
    if current_user_id(websocket) is None:
        await websocket.close(code=1008)  # before accept: the handshake is refused
        return
    await websocket.accept()
    session = websocket.session
    try:
        while True:
            text = await websocket.receive_text()
            session["sent"] = session.get("sent", 0) + 1  # saved before the reply goes out
            await websocket.send_text(f"{text} (your message {session['sent']})")
    except WebSocketDisconnect:
        pass


def build(store: Store, secret: str, check_every: float = 10) -> Starlette:
    """The app on ``store`` (tests pass their own store and a short interval)."""
    app = Starlette(
        routes=[
            Route("/login", sign_in, methods=["POST"]),
            Route("/logout-everywhere", sign_out_everywhere, methods=["POST"]),
            WebSocketRoute("/chat", chat),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[secret],
        cookie_name="sid",  # plain http on localhost; keep __Host-sid behind https
        websocket_check_interval=check_every,
    )
    return app


store = from_url(os.environ.get("SESSION_STORE", "sqlite:///sessions.sqlite3"))
app = build(store, os.environ.get("SESSION_SECRET", ""))  # none set: a start-up error with the fix
