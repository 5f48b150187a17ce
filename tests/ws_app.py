"""A small app with WebSocket routes, served by uvicorn as a real server for
tests/test_websockets.py.

``SESSION_STORE`` picks the store, ``WS_CHECK`` the ``websocket_check_interval`` and
``IDLE`` the idle timeout (seconds). On ``/ws`` each text message is a command:
``inc:K`` adds 1 to session key K and answers the new value, ``set:K=V`` stores V
without answering, ``user`` answers the logged-in user id.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionware import SessionMiddleware
from sessionware.auth import current_user_id, login, logout, logout_everywhere
from sessionware.stores import from_url


async def do_login(request: Request) -> PlainTextResponse:
    await login(request, request.query_params["user"])
    return PlainTextResponse("in")


async def do_logout(request: Request) -> PlainTextResponse:
    await logout(request)
    return PlainTextResponse("out")


async def everywhere(request: Request) -> PlainTextResponse:
    ended = await logout_everywhere(request.app.state.store, request.query_params["user"])
    return PlainTextResponse(str(ended))


async def me(request: Request) -> JSONResponse:
    data = {k: request.session[k] for k in request.session}
    return JSONResponse({"user": current_user_id(request), "data": data})


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def commands(websocket: WebSocket) -> None:
    await websocket.accept()
    session = websocket.session
    try:
        while True:
            text = await websocket.receive_text()
            if text.startswith("inc:"):
                key = text[4:]
                session[key] = int(session.get(key, 0)) + 1
                await websocket.send_text(str(session[key]))
            elif text.startswith("set:"):
                key, _, value = text[4:].partition("=")
                session[key] = value
            elif text == "user":
                await websocket.send_text(str(current_user_id(websocket)))
    except WebSocketDisconnect:
        return


async def login_then_accept(websocket: WebSocket) -> None:
    """A login during the handshake: its cookie goes out with the 101 response."""
    await login(websocket, websocket.query_params["user"])
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


store = from_url(os.environ["SESSION_STORE"])
app = Starlette(
    routes=[
        Route("/login", do_login, methods=["POST"]),
        Route("/logout", do_logout, methods=["POST"]),
        Route("/everywhere", everywhere, methods=["POST"]),
        Route("/me", me),
        Route("/healthz", healthz),
        WebSocketRoute("/ws", commands),
        WebSocketRoute("/ws-login", login_then_accept),
    ]
)
app.state.store = store
app.add_middleware(
    SessionMiddleware,
    store=store,
    secrets=[os.environ["SESSION_SECRET"]],
    cookie_name="sid",
    secure=False,
    idle_timeout=float(os.environ.get("IDLE", "1800")),
    websocket_check_interval=float(os.environ.get("WS_CHECK", "0.3")),
)


def example() -> Starlette:
    """examples/websocket_app.py's app on this store, looking every 0.3 s (a factory)."""
    path = Path(__file__).resolve().parents[1] / "examples" / "websocket_app.py"
    built: Starlette = runpy.run_path(str(path), run_name="example")["build"](
        store, os.environ["SESSION_SECRET"], 0.3
    )
    built.add_route("/healthz", healthz)  # what the tests wait for
    return built
