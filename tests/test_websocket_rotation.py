"""An open WebSocket follows its session to the new id when a parallel page rotates it
(``rotate_every``), on every store: it stays open and its writes land on the new
record. Driven in-process through the raw ASGI interface, with a clock moved by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionware import SessionMiddleware
from sessionware.stores import Store
from sessionware.testing import ManualClock
from tests.helpers import SECRET, Browser

pytestmark = pytest.mark.anyio


async def login(request: Request) -> JSONResponse:
    request.session["user"] = "ada"
    return JSONResponse({})


async def show(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


async def counter(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
            websocket.session["n"] = websocket.session.get("n", 0) + 1
            await websocket.send_text(str(websocket.session["n"]))
    except WebSocketDisconnect:
        return


class Socket:
    """One WebSocket connection to an ASGI app, as a server would drive it."""

    def __init__(self, app: Any, cookie: str) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 443),
            "subprotocols": [],
        }
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(app(scope, self.incoming.get, self.outgoing.put))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outgoing.get(), 5)

    async def ask(self, text: str) -> dict[str, Any]:
        await self.incoming.put({"type": "websocket.receive", "text": text})
        return await self.next()

    async def end(self) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


async def test_a_socket_follows_a_rotation_made_by_a_page(store: Store) -> None:
    clock = ManualClock()
    app = Starlette(
        routes=[
            Route("/login", login),
            Route("/show", show),
            WebSocketRoute("/ws", counter),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        store=store,
        secrets=[SECRET],
        rotate_every=120,
        websocket_check_interval=0.05,
        clock=clock,
    )
    async with Browser(app) as page:
        await page.get("/login")
        old = page.value
        socket = Socket(app, f"__Host-sid={old}")
        assert (await socket.next())["type"] == "websocket.accept"
        assert (await socket.ask("+"))["text"] == "1"
        clock.advance(200)
        rotated = await page.get("/show")
        assert rotated.json() == {"user": "ada", "n": 1}
        assert page.value != old  # the page got the new id
        await asyncio.sleep(0.3)  # a few of the socket's looks
        assert (await socket.ask("+"))["text"] == "2"  # still open, on the new record
        assert (await page.get("/show")).json() == {"user": "ada", "n": 2}
        await socket.end()
